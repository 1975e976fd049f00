//! The name namespace: absolute, `/`-separated names (`/srv/echo`) mapped to
//! procman's own client reference of the object, QNX-style. Directories are
//! implied by the names under them.

use abi::procman::ProcmanError;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// The longest name procman accepts, in bytes.
pub const MAX_NAME: usize = 128;

/// The most names one process may have registered at once. Each costs
/// procman a descriptor (its client reference) and an entry here, so without
/// a bound one process could fill procman's table for everyone.
pub const MAX_NAMES_PER_PROCESS: usize = 16;

/// What a name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameEntry {
    /// procman's client reference to the object (a descriptor in procman's table).
    pub descriptor: u32,
    /// The process that registered the name; its death removes the name.
    pub owner: u32,
    /// The object's security type.
    pub security_type: u32,
    /// Whether it is a system object.
    pub system: bool,
    /// Whether it was registered as a mount point (`CREATE_MOUNT`): its
    /// server resolves the names under it.
    pub mount: bool,
}

/// One entry of a directory, as NAME_LIST reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Child {
    /// A registered name (one component) and what it stands for.
    Name(String, NameEntry),
    /// A directory implied by the names under it (one component, no `/`).
    Directory(String),
}

impl Child {
    /// The entry's name in its directory.
    pub fn name(&self) -> &str {
        match self {
            Child::Name(name, _) | Child::Directory(name) => name,
        }
    }
}

/// Whether `name` is procman's socket directory or under it (`/sock`,
/// `/sock/...`): reserved for the socket registry (D96).
pub fn is_socket_name(name: &str) -> bool {
    let directory = abi::namespace::SOCKET_DIRECTORY;
    name == directory
        || name
            .strip_prefix(directory)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The socket port `/sock/<port>` names: decimal, no sign or leading
/// zero, 1..=`MAX_PORT`; `None` for any other name.
pub fn socket_port(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(abi::namespace::SOCKET_DIRECTORY)?
        .strip_prefix('/')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u32>()
        .ok()
        .filter(|port| (1..=abi::stream::MAX_PORT).contains(port))
}

/// Checks a working directory (CHDIR): `/`, or an absolute name with
/// clean components, at most `MAX_DIRECTORY` bytes, no NUL.
pub fn check_directory(path: &str) -> Result<(), ProcmanError> {
    let valid = path == "/"
        || (path.len() <= abi::namespace::MAX_DIRECTORY
            && path.starts_with('/')
            && !path.contains('\0')
            && path[1..]
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".."));
    if valid {
        Ok(())
    } else {
        Err(ProcmanError::BadDirectory)
    }
}

/// Checks a name: absolute, at most [`MAX_NAME`] bytes, no empty, `.` or
/// `..` component, no trailing `/`, no NUL.
pub fn check_name(name: &str) -> Result<(), ProcmanError> {
    let valid = name.len() <= MAX_NAME
        && name.starts_with('/')
        && name.len() > 1
        && !name.contains('\0')
        && name[1..]
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if valid {
        Ok(())
    } else {
        Err(ProcmanError::BadName)
    }
}

/// The namespace.
#[derive(Debug, Default)]
pub struct Namespace {
    entries: BTreeMap<String, NameEntry>,
    /// How many names each owner has (owners with none are absent).
    owned: BTreeMap<u32, usize>,
}

impl Namespace {
    /// An empty namespace.
    pub const fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            owned: BTreeMap::new(),
        }
    }

    /// Forgets one of `owner`'s names in the count.
    fn release(&mut self, owner: u32) {
        if let Some(count) = self.owned.get_mut(&owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.owned.remove(&owner);
            }
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// How many names `owner` has registered.
    pub fn owned_by(&self, owner: u32) -> usize {
        self.owned.get(&owner).copied().unwrap_or(0)
    }

    /// Whether `owner` may register one more name (under
    /// [`MAX_NAMES_PER_PROCESS`]).
    pub fn may_register(&self, owner: u32) -> Result<(), ProcmanError> {
        if self.owned_by(owner) < MAX_NAMES_PER_PROCESS {
            Ok(())
        } else {
            Err(ProcmanError::TooManyObjects)
        }
    }

    /// Registers `name` for `entry.owner` (checked, not taken, within the
    /// owner's quota: the policy checks all three first). A refusal changes
    /// nothing.
    pub fn insert(&mut self, name: &str, entry: NameEntry) -> Result<(), ProcmanError> {
        check_name(name)?;
        if self.entries.contains_key(name) {
            return Err(ProcmanError::NameExists);
        }
        self.may_register(entry.owner)?;
        self.entries.insert(String::from(name), entry);
        *self.owned.entry(entry.owner).or_insert(0) += 1;
        Ok(())
    }

    /// Looks `name` up.
    pub fn lookup(&self, name: &str) -> Result<&NameEntry, ProcmanError> {
        check_name(name)?;
        self.entries.get(name).ok_or(ProcmanError::NoSuchName)
    }

    /// Removes `name` on behalf of process `caller`, who must have registered it.
    pub fn unlink(&mut self, name: &str, caller: u32) -> Result<NameEntry, ProcmanError> {
        let entry = *self.lookup(name)?;
        if entry.owner != caller {
            return Err(ProcmanError::NotNameOwner);
        }
        self.entries.remove(name);
        self.release(caller);
        Ok(entry)
    }

    /// Removes every name `owner` registered (it ended) and returns them.
    pub fn remove_owned_by(&mut self, owner: u32) -> Vec<NameEntry> {
        let names: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.owner == owner)
            .map(|(n, _)| n.clone())
            .collect();
        self.owned.remove(&owner);
        names
            .iter()
            .filter_map(|name| self.entries.remove(name))
            .collect()
    }

    /// The entries directly inside `directory` (`/` for the root) with
    /// what they are: registered names and the directories their deeper
    /// names imply, in name order (a name that is both a registered name
    /// and a directory is listed as both, the name first).
    /// `PM_NO_SUCH_NAME` when nothing is there and `directory` is neither
    /// the root nor a registered name.
    pub fn children(&self, directory: &str) -> Result<Vec<Child>, ProcmanError> {
        if directory != "/" {
            check_name(directory)?;
        }
        let prefix = if directory == "/" {
            String::from("/")
        } else {
            alloc::format!("{directory}/")
        };
        let mut out: Vec<Child> = Vec::new();
        for (name, entry) in self
            .entries
            .range::<str, _>((
                core::ops::Bound::Included(prefix.as_str()),
                core::ops::Bound::Unbounded,
            ))
            .take_while(|(n, _)| n.starts_with(prefix.as_str()))
        {
            let rest = &name[prefix.len()..];
            let child = match rest.split_once('/') {
                Some((dir, _)) => Child::Directory(String::from(dir)),
                None => Child::Name(String::from(rest), *entry),
            };
            if out.last() != Some(&child) {
                out.push(child);
            }
        }
        // "a/b" sorts before "a.b" but after "a": keep name order, names
        // before directories of the same name.
        out.sort_by(|a, b| {
            a.name().cmp(b.name()).then_with(|| {
                matches!(a, Child::Directory(_)).cmp(&matches!(b, Child::Directory(_)))
            })
        });
        out.dedup();
        if out.is_empty() && directory != "/" && !self.entries.contains_key(directory) {
            return Err(ProcmanError::NoSuchName);
        }
        Ok(out)
    }

    /// The entries directly inside `directory` (`/` for the root): names, and
    /// subdirectories with a trailing `/`, sorted, each once (LIST: what
    /// [`Namespace::children`] finds, as text).
    pub fn list(&self, directory: &str) -> Result<Vec<String>, ProcmanError> {
        let mut out: Vec<String> = self
            .children(directory)?
            .into_iter()
            .map(|child| match child {
                Child::Name(name, _) => name,
                Child::Directory(name) => alloc::format!("{name}/"),
            })
            .collect();
        // As text `a/` sorts after `a.b`: LIST's order is the text's.
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(owner: u32) -> NameEntry {
        NameEntry {
            descriptor: 7,
            owner,
            security_type: 1,
            system: false,
            mount: false,
        }
    }

    #[test]
    fn names_must_be_absolute_clean_paths() {
        for good in ["/a", "/srv/echo", "/dev/tty0", "/sock/5000"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        let too_long = alloc::format!("/{}", "x".repeat(MAX_NAME));
        for bad in [
            "",
            "/",
            "srv/echo",
            "/srv/",
            "/srv//echo",
            "/./a",
            "/a/..",
            "/a\0b",
            too_long.as_str(),
        ] {
            assert_eq!(check_name(bad), Err(ProcmanError::BadName), "{bad:?}");
        }
    }

    #[test]
    fn socket_names_and_working_directories() {
        for (name, reserved, port) in [
            ("/sock", true, None),
            ("/sock/80", true, Some(80)),
            ("/sock/65535", true, Some(65535)),
            ("/sock/65536", true, None),
            ("/sock/0", true, None),
            ("/sock/080", true, None),
            ("/sock/+8", true, None),
            ("/sock/8/x", true, None),
            ("/sock/", true, None),
            ("/socket", false, None),
            ("/srv/sock/1", false, None),
        ] {
            assert_eq!(is_socket_name(name), reserved, "{name}");
            assert_eq!(socket_port(name), port, "{name}");
        }
        let long = alloc::format!("/{}", "d".repeat(abi::namespace::MAX_DIRECTORY - 1));
        for good in ["/", "/tmp", "/tmp/a/b", long.as_str()] {
            assert_eq!(check_directory(good), Ok(()), "{good}");
        }
        let too_long = alloc::format!("{long}d");
        for bad in [
            "",
            "tmp",
            "/tmp/",
            "//",
            "/tmp/./a",
            "/..",
            "/a\0",
            too_long.as_str(),
        ] {
            assert_eq!(
                check_directory(bad),
                Err(ProcmanError::BadDirectory),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn insert_lookup_unlink_and_ownership() {
        let mut ns = Namespace::new();
        assert_eq!(ns.insert("/srv/echo", entry(1)), Ok(()));
        assert_eq!(
            ns.insert("/srv/echo", entry(2)),
            Err(ProcmanError::NameExists)
        );
        assert_eq!(ns.lookup("/srv/echo").map(|e| e.owner), Ok(1));
        assert_eq!(ns.lookup("/srv/other"), Err(ProcmanError::NoSuchName));
        assert_eq!(ns.unlink("/srv/echo", 2), Err(ProcmanError::NotNameOwner));
        assert_eq!(ns.unlink("/srv/echo", 1).map(|e| e.owner), Ok(1));
        assert!(ns.is_empty());
    }

    #[test]
    fn the_dead_leave_nothing_behind() {
        let mut ns = Namespace::new();
        for (name, owner) in [("/srv/a", 1), ("/srv/b", 2), ("/dev/c", 1)] {
            assert_eq!(ns.insert(name, entry(owner)), Ok(()));
        }
        assert_eq!(ns.remove_owned_by(1).len(), 2);
        assert_eq!(ns.len(), 1);
        assert!(ns.contains("/srv/b"));
    }

    #[test]
    fn names_per_process_are_bounded_and_released_with_them() {
        let mut ns = Namespace::new();
        let name = |i: usize| alloc::format!("/srv/n{i}");
        for i in 0..MAX_NAMES_PER_PROCESS {
            assert_eq!(ns.insert(&name(i), entry(1)), Ok(()));
        }
        // The next is refused and changes nothing; others are not affected.
        assert_eq!(ns.may_register(1), Err(ProcmanError::TooManyObjects));
        assert_eq!(
            ns.insert("/srv/over", entry(1)),
            Err(ProcmanError::TooManyObjects)
        );
        assert!(!ns.contains("/srv/over"));
        assert_eq!(ns.len(), MAX_NAMES_PER_PROCESS);
        assert_eq!(ns.may_register(2), Ok(()));
        assert_eq!(ns.insert("/srv/other", entry(2)), Ok(()));
        // UNLINK gives one back.
        assert_eq!(ns.unlink(&name(0), 1).map(|e| e.owner), Ok(1));
        assert_eq!(ns.insert("/srv/over", entry(1)), Ok(()));
        assert_eq!(
            ns.insert("/srv/again", entry(1)),
            Err(ProcmanError::TooManyObjects)
        );
        // The owner's end gives back all of them.
        assert_eq!(ns.remove_owned_by(1).len(), MAX_NAMES_PER_PROCESS);
        assert_eq!(ns.may_register(1), Ok(()));
        assert_eq!(ns.insert("/srv/again", entry(1)), Ok(()));
    }

    #[test]
    fn listing_shows_children_and_subdirectories_once() {
        let mut ns = Namespace::new();
        for name in ["/srv/echo", "/srv/net/tcp", "/srv/net/udp", "/dev/tty0"] {
            assert_eq!(ns.insert(name, entry(1)), Ok(()));
        }
        assert_eq!(
            ns.list("/"),
            Ok(vec![String::from("dev/"), String::from("srv/")])
        );
        assert_eq!(
            ns.list("/srv"),
            Ok(vec![String::from("echo"), String::from("net/")])
        );
        assert_eq!(
            ns.list("/srv/net"),
            Ok(vec![String::from("tcp"), String::from("udp")])
        );
        assert_eq!(ns.list("/nothing"), Err(ProcmanError::NoSuchName));
        assert_eq!(ns.list("bad"), Err(ProcmanError::BadName));
    }

    /// LIST as it was computed before it was built on `children`: the
    /// registered names under `directory`'s prefix, in text order, each
    /// cut after its first component (a trailing `/` for a deeper name).
    fn list_by_keys(ns: &Namespace, directory: &str) -> Result<Vec<String>, ProcmanError> {
        if directory != "/" {
            check_name(directory)?;
        }
        let prefix = if directory == "/" {
            String::from("/")
        } else {
            alloc::format!("{directory}/")
        };
        let mut out: Vec<String> = Vec::new();
        for name in ns.entries.keys().filter(|n| n.starts_with(prefix.as_str())) {
            let rest = &name[prefix.len()..];
            let child = match rest.split_once('/') {
                Some((dir, _)) => alloc::format!("{dir}/"),
                None => String::from(rest),
            };
            if out.last() != Some(&child) {
                out.push(child);
            }
        }
        if out.is_empty() && directory != "/" && !ns.entries.contains_key(directory) {
            return Err(ProcmanError::NoSuchName);
        }
        Ok(out)
    }

    proptest! {
        /// LIST built on `children` lists exactly what it listed before,
        /// in the same order, for any set of names (`.`-names sort before
        /// `/`, so `a.b` comes between `a` and `a/`).
        #[test]
        fn list_is_children_as_text(picks in prop::collection::vec(0usize..12, 0..12)) {
            let names = ["/a", "/a.b", "/a/x", "/a/y/z", "/a0", "/b", "/b/c", "/srv/e", "/srv/e/f", "/srv/e.g", "/z/q", "/a/x/w"];
            let mut ns = Namespace::new();
            for pick in picks {
                let _ = ns.insert(names[pick], entry(1));
            }
            for directory in ["/", "/a", "/a/x", "/srv", "/srv/e", "/b", "/nothing", "bad", "/z"] {
                prop_assert_eq!(ns.list(directory), list_by_keys(&ns, directory), "{}", directory);
            }
        }

        /// Whatever sequence of inserts, unlinks and deaths: lookups agree with
        /// a model map, and a dead owner's names are gone.
        #[test]
        fn namespace_matches_model(ops in prop::collection::vec((0u8..3, 0usize..6, 1u32..4), 0..100)) {
            let names = ["/a", "/a/b", "/srv/x", "/srv/y/z", "/dev/t", "/q"];
            let mut ns = Namespace::new();
            let mut model: BTreeMap<&str, u32> = BTreeMap::new();
            for (op, n, owner) in ops {
                let name = names[n];
                match op {
                    0 => {
                        let expected = if model.contains_key(name) { Err(ProcmanError::NameExists) } else { Ok(()) };
                        prop_assert_eq!(ns.insert(name, entry(owner)), expected);
                        model.entry(name).or_insert(owner);
                    }
                    1 => {
                        let expected = match model.get(name) {
                            None => Err(ProcmanError::NoSuchName),
                            Some(o) if *o != owner => Err(ProcmanError::NotNameOwner),
                            Some(_) => Ok(()),
                        };
                        prop_assert_eq!(ns.unlink(name, owner).map(|_| ()), expected);
                        if expected.is_ok() { model.remove(name); }
                    }
                    _ => {
                        ns.remove_owned_by(owner);
                        model.retain(|_, o| *o != owner);
                    }
                }
                for name in names {
                    prop_assert_eq!(ns.lookup(name).ok().map(|e| e.owner), model.get(name).copied());
                }
                for owner in 1u32..4 {
                    prop_assert_eq!(ns.owned_by(owner), model.values().filter(|o| **o == owner).count());
                }
            }
        }
    }
}
