//! What `ls` shows: procman's namespace with each entry's kind, type and
//! owner (NAME_LIST, ABI.md §7a.8), and a directory under `/tmp` with its
//! files' sizes. Only text: the entries come from [`crate::System`]. It
//! must never hide an entry or invent one.

use alloc::format;
use alloc::string::String;

use crate::FileInfo;

/// One entry of a namespace directory, as NAME_LIST gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameInfo {
    /// Its name in the directory.
    pub name: String,
    /// `dir`, `door`, `mount` or `socket`.
    pub kind: &'static str,
    /// A door's security type (`files`, `pty`, `echo`...); empty for a
    /// directory or a socket.
    pub type_name: String,
    /// Its owner's process id (a socket's creator); 0 for a directory.
    pub owner: u32,
    /// Its owner's program.
    pub program: String,
}

/// The namespace listing: a header, then one line per entry (directories
/// end in `/`, and have no type or owner).
pub fn names(entries: &[NameInfo]) -> String {
    let mut text = String::from("KIND   TYPE       PID PROGRAM      NAME\n");
    for entry in entries {
        let slash = if entry.kind == "dir" { "/" } else { "" };
        let owner = if entry.owner == 0 {
            String::new()
        } else {
            format!("{}", entry.owner)
        };
        text.push_str(&format!(
            "{:<6} {:<8} {:>5} {:<12} {}{slash}\n",
            entry.kind, entry.type_name, owner, entry.program, entry.name
        ));
    }
    text
}

/// A directory under `/tmp`: kind, size and name per line.
pub fn files(entries: &[FileInfo]) -> String {
    let mut text = String::new();
    for entry in entries {
        let (kind, slash) = if entry.directory {
            ("dir ", "/")
        } else {
            ("file", "")
        };
        text.push_str(&format!("{kind} {:>7} {}{slash}\n", entry.size, entry.name));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn names_show_kind_type_and_owner() {
        let entries = vec![
            NameInfo {
                name: "dev".into(),
                kind: "dir",
                type_name: String::new(),
                owner: 0,
                program: String::new(),
            },
            NameInfo {
                name: "tmp".into(),
                kind: "mount",
                type_name: "files".into(),
                owner: 2,
                program: "ramfs".into(),
            },
        ];
        assert_eq!(
            names(&entries),
            "KIND   TYPE       PID PROGRAM      NAME\n\
             dir                                dev/\n\
             mount  files        2 ramfs        tmp\n"
        );
    }
}
