//! NAME_LIST's view of one directory (ABI.md §7a.8, decisions D93, D96):
//! the namespace's names and implied directories, with procman's socket
//! registry shown as `/sock/<port>`, each entry with its kind and owner,
//! in one order a caller can page through. Plain data: the server fills
//! in the program and type names. It must never list a name the
//! namespace or the socket registry does not hold.

use abi::namespace::{
    ENTRY_CONNECTED, ENTRY_SYSTEM, KIND_DIRECTORY, KIND_DOOR, KIND_MOUNT, KIND_SOCKET,
    SOCKET_DIRECTORY,
};
use abi::procman::ProcmanError;
use alloc::string::String;
use alloc::vec::Vec;

use crate::namespace::{Child, Namespace};
use crate::sockets::ListedSocket;

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `KIND_DOOR`, `KIND_DIRECTORY`, `KIND_MOUNT` or `KIND_SOCKET`.
    pub kind: u32,
    /// `ENTRY_SYSTEM`, `ENTRY_CONNECTED`.
    pub flags: u32,
    /// The registering process, a socket's creator; 0 for a directory.
    pub owner: u32,
    /// A door's security type; 0 otherwise.
    pub security_type: u32,
    /// Its name in the directory.
    pub name: String,
}

/// The entries of `directory`: the namespace's children, then (for
/// `/sock`) each live socket in port order; the root always shows the
/// socket directory `sock` (D96: it is procman's, and exists with no
/// socket in it). `PM_NO_SUCH_NAME` for a directory that holds nothing and
/// is neither the root, `/sock`, nor a registered name; `PM_BAD_NAME` for
/// a malformed one.
pub fn list_directory(
    namespace: &Namespace,
    sockets: impl Iterator<Item = ListedSocket>,
    directory: &str,
) -> Result<Vec<Listed>, ProcmanError> {
    let children = match namespace.children(directory) {
        Err(ProcmanError::NoSuchName) if directory == SOCKET_DIRECTORY => Vec::new(),
        other => other?,
    };
    let mut out: Vec<Listed> = children
        .into_iter()
        .map(|child| match child {
            Child::Name(name, entry) => Listed {
                kind: if entry.mount { KIND_MOUNT } else { KIND_DOOR },
                flags: if entry.system { ENTRY_SYSTEM } else { 0 },
                owner: entry.owner,
                security_type: entry.security_type,
                name,
            },
            Child::Directory(name) => directory_entry(name),
        })
        .collect();
    if directory == SOCKET_DIRECTORY {
        out.extend(sockets.map(|socket| Listed {
            kind: KIND_SOCKET,
            flags: if socket.connected { ENTRY_CONNECTED } else { 0 },
            owner: socket.creator,
            security_type: 0,
            name: alloc::format!("{}", socket.port),
        }));
    } else if directory == "/" {
        let sock = &SOCKET_DIRECTORY[1..];
        if !out
            .iter()
            .any(|e| e.kind == KIND_DIRECTORY && e.name == sock)
        {
            out.push(directory_entry(String::from(sock)));
            out.sort_by(|a, b| {
                a.name
                    .cmp(&b.name)
                    .then_with(|| (a.kind == KIND_DIRECTORY).cmp(&(b.kind == KIND_DIRECTORY)))
            });
        }
    }
    Ok(out)
}

fn directory_entry(name: String) -> Listed {
    Listed {
        kind: KIND_DIRECTORY,
        flags: 0,
        owner: 0,
        security_type: 0,
        name,
    }
}

/// One page of a listing: the entries from `skip` on, at most `limit`,
/// and whether more follow them.
pub fn page(entries: &[Listed], skip: u32, limit: usize) -> (&[Listed], bool) {
    let start = (skip as usize).min(entries.len());
    let end = start.saturating_add(limit).min(entries.len());
    (&entries[start..end], end < entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::NameEntry;
    use proptest::prelude::*;

    fn entry(owner: u32, mount: bool) -> NameEntry {
        NameEntry {
            descriptor: 9,
            owner,
            security_type: 5,
            system: owner == 7,
            mount,
        }
    }

    fn names(listing: &[Listed]) -> Vec<(&str, u32, u32)> {
        listing
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.owner))
            .collect()
    }

    fn socket(port: u32, creator: u32, connected: bool) -> ListedSocket {
        ListedSocket {
            port,
            creator,
            connected,
        }
    }

    #[test]
    fn kinds_and_owners() {
        let mut ns = Namespace::new();
        ns.insert("/tmp", entry(2, true)).expect("a free name");
        ns.insert("/srv/echo", entry(1, false))
            .expect("a free name");
        ns.insert("/dev/ptmx", entry(7, false))
            .expect("a free name");
        let root = list_directory(&ns, core::iter::empty(), "/").expect("a listable directory");
        assert_eq!(
            names(&root),
            [
                ("dev", KIND_DIRECTORY, 0),
                ("sock", KIND_DIRECTORY, 0),
                ("srv", KIND_DIRECTORY, 0),
                ("tmp", KIND_MOUNT, 2),
            ]
        );
        let dev = list_directory(&ns, core::iter::empty(), "/dev").expect("a listable directory");
        assert_eq!(names(&dev), [("ptmx", KIND_DOOR, 7)]);
        assert_eq!(dev[0].flags, ENTRY_SYSTEM);
        assert_eq!(dev[0].security_type, 5);
        let sockets = [socket(80, 3, true), socket(5000, 4, false)];
        let sock = list_directory(&ns, sockets.into_iter(), "/sock").expect("a listable directory");
        assert_eq!(
            names(&sock),
            [("80", KIND_SOCKET, 3), ("5000", KIND_SOCKET, 4)]
        );
        assert_eq!(sock[0].flags, ENTRY_CONNECTED);
        assert_eq!(sock[1].flags, 0);
        // An empty socket directory still exists.
        assert_eq!(
            list_directory(&ns, core::iter::empty(), "/sock"),
            Ok(Vec::new())
        );
        assert_eq!(
            list_directory(&ns, core::iter::empty(), "/nothing"),
            Err(ProcmanError::NoSuchName)
        );
        assert_eq!(
            list_directory(&ns, core::iter::empty(), "dev"),
            Err(ProcmanError::BadName)
        );
        // A registered name with nothing under it lists as empty.
        assert_eq!(
            list_directory(&ns, core::iter::empty(), "/tmp"),
            Ok(Vec::new())
        );
    }

    #[test]
    fn a_name_and_a_directory_of_the_same_name_are_both_shown() {
        let mut ns = Namespace::new();
        ns.insert("/a/x", entry(1, false)).expect("a free name");
        ns.insert("/a.b", entry(1, false)).expect("a free name");
        ns.insert("/a", entry(2, false)).expect("a free name");
        ns.insert("/a/y", entry(1, false)).expect("a free name");
        let root = list_directory(&ns, core::iter::empty(), "/").expect("a listable directory");
        assert_eq!(
            names(&root),
            [
                ("a", KIND_DOOR, 2),
                ("a", KIND_DIRECTORY, 0),
                ("a.b", KIND_DOOR, 1),
                ("sock", KIND_DIRECTORY, 0),
            ]
        );
    }

    #[test]
    fn pages() {
        let entries: Vec<Listed> = (0..5)
            .map(|i| directory_entry(alloc::format!("d{i}")))
            .collect();
        let (first, more) = page(&entries, 0, 2);
        assert_eq!((first.len(), more), (2, true));
        let (last, more) = page(&entries, 4, 2);
        assert_eq!((last[0].name.as_str(), more), ("d4", false));
        assert_eq!(page(&entries, 5, 2).0.len(), 0);
        assert_eq!(page(&entries, u32::MAX, 2), (&[][..], false));
    }

    proptest! {
        /// Paging through a listing in pages of any size gives every entry
        /// once, in order.
        #[test]
        fn paging_gives_every_entry_once(count in 0usize..40, limit in 1usize..9) {
            let entries: Vec<Listed> = (0..count)
                .map(|i| directory_entry(alloc::format!("d{i:02}")))
                .collect();
            let mut seen = Vec::new();
            let mut skip = 0u32;
            loop {
                let (chunk, more) = page(&entries, skip, limit);
                seen.extend(chunk.iter().cloned());
                skip += chunk.len() as u32;
                if !more { break; }
                prop_assert!(!chunk.is_empty());
            }
            prop_assert_eq!(seen, entries);
        }

        /// Every listed entry of a directory is a registered name, a
        /// directory some name implies, or (under /sock) a live socket.
        #[test]
        fn listings_hold_only_what_exists(
            picks in prop::collection::vec(0usize..6, 0..6),
            ports in prop::collection::btree_set(1u32..100, 0..4),
        ) {
            let pool = ["/a", "/a/b", "/srv/x", "/srv/y/z", "/dev/t", "/q"];
            let mut ns = Namespace::new();
            for i in picks {
                let _ = ns.insert(pool[i], entry(1, false));
            }
            let sockets: Vec<ListedSocket> = ports.iter().map(|&p| socket(p, 2, false)).collect();
            for directory in ["/", "/a", "/srv", "/srv/y", "/sock"] {
                let Ok(listing) = list_directory(&ns, sockets.iter().copied(), directory) else {
                    continue;
                };
                for e in listing {
                    let full = if directory == "/" {
                        alloc::format!("/{}", e.name)
                    } else {
                        alloc::format!("{directory}/{}", e.name)
                    };
                    let exists = match e.kind {
                        KIND_DOOR | KIND_MOUNT => ns.contains(&full),
                        KIND_SOCKET => ports.iter().any(|p| alloc::format!("/sock/{p}") == full),
                        _ => full == "/sock" || pool.iter().any(|n| ns.contains(n) && n.starts_with(&alloc::format!("{full}/"))),
                    };
                    prop_assert!(exists, "{} listed in {}", e.name, directory);
                }
            }
        }
    }
}
