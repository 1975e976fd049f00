//! Each process's working directory (ABI.md §7a.8, decision D95): set by
//! CHDIR, read by GETCWD, handed from parent to child at SPAWN, as a Unix
//! process inherits its directory; `/` for a process that never set one.
//! procman only keeps the path (checked for form, `check_directory`): the
//! server under it is the one that knows whether it exists. It must never
//! keep the directory of a process that ended.

use alloc::collections::BTreeMap;
use alloc::string::String;

/// The directories of the processes that set or inherited one.
#[derive(Debug, Default)]
pub struct WorkingDirectories {
    /// By process id; a process absent here is in `/`.
    paths: BTreeMap<u32, String>,
}

impl WorkingDirectories {
    /// No process has a directory but `/`.
    pub const fn new() -> Self {
        Self {
            paths: BTreeMap::new(),
        }
    }

    /// `pid`'s directory.
    pub fn get(&self, pid: u32) -> &str {
        self.paths.get(&pid).map_or("/", String::as_str)
    }

    /// Sets `pid`'s directory to `path` (already checked).
    pub fn set(&mut self, pid: u32, path: &str) {
        if path == "/" {
            self.paths.remove(&pid);
        } else {
            self.paths.insert(pid, String::from(path));
        }
    }

    /// A new child starts in its parent's directory.
    pub fn inherit(&mut self, parent: u32, child: u32) {
        let path = String::from(self.get(parent));
        self.set(child, &path);
    }

    /// `pid` ended: its directory goes.
    pub fn exited(&mut self, pid: u32) {
        self.paths.remove(&pid);
    }

    /// How many processes are in a directory other than `/`.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether every process is in `/`.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_inherit_and_forget() {
        let mut directories = WorkingDirectories::new();
        assert_eq!(directories.get(4), "/");
        directories.set(4, "/tmp/a");
        directories.inherit(4, 5);
        assert_eq!(directories.get(5), "/tmp/a");
        // The child's change is its own.
        directories.set(5, "/tmp");
        assert_eq!((directories.get(4), directories.get(5)), ("/tmp/a", "/tmp"));
        directories.exited(4);
        directories.exited(5);
        assert!(directories.is_empty());
        // `/` takes no room.
        directories.set(6, "/");
        directories.inherit(6, 7);
        assert_eq!((directories.len(), directories.get(7)), (0, "/"));
    }
}
