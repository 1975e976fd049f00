//! The file store: a tree of directories and files held in memory, under a
//! byte budget and a node limit (decision D81). Every operation checks
//! everything first and changes the tree only when it succeeds, so a
//! refusal leaves the store exactly as it was (the tests compare whole
//! stores before and after).
//!
//! Paths are the server's (after the mount point): `/` is the root,
//! `/a/b` a name in a directory. This module must never trust a path or
//! an id: every one is checked and a bad one is a [`FileError`].

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use abi::file::{
    CREATE, EXCLUSIVE, FileError, FileId, KIND_DIRECTORY, KIND_FILE, MAX_NAME, MAX_PATH,
    OPEN_FLAGS, TRUNCATE,
};

/// One node of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Directory(BTreeMap<String, u32>),
}

/// What STAT and LIST say about a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `KIND_FILE` or `KIND_DIRECTORY`.
    pub kind: u32,
    /// A file's bytes, a directory's entries.
    pub size: u64,
    /// The node.
    pub id: FileId,
}

/// The tree, its limits and what it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// Slot `n` is node `n` (`None`: free); node 0 is the root.
    nodes: Vec<Option<Node>>,
    /// Each slot's generation, raised when its node goes.
    generations: Vec<u32>,
    bytes: u64,
    live: u32,
    byte_limit: u64,
    node_limit: u32,
}

/// A path split into its names; `[]` is the root.
fn components(path: &[u8]) -> Result<Vec<&str>, FileError> {
    if path.len() > MAX_PATH {
        return Err(FileError::BadPath);
    }
    let path = core::str::from_utf8(path).map_err(|_| FileError::BadPath)?;
    let rest = path.strip_prefix('/').ok_or(FileError::BadPath)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|name| match name {
            "" | "." | ".." => Err(FileError::BadPath),
            name if name.len() > MAX_NAME => Err(FileError::BadPath),
            name => Ok(name),
        })
        .collect()
}

impl Store {
    /// An empty store (the root alone) holding at most `byte_limit` bytes
    /// of files and `node_limit` nodes, the root included.
    pub fn new(byte_limit: u64, node_limit: u32) -> Self {
        Store {
            nodes: alloc::vec![Some(Node::Directory(BTreeMap::new()))],
            generations: alloc::vec![0],
            bytes: 0,
            live: 1,
            byte_limit,
            node_limit,
        }
    }

    /// Bytes every file holds together.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Live nodes, the root included.
    pub fn nodes(&self) -> u32 {
        self.live
    }

    fn id(&self, node: u32) -> FileId {
        FileId {
            node,
            generation: self.generations.get(node as usize).copied().unwrap_or(0),
        }
    }

    fn node(&self, node: u32) -> Option<&Node> {
        self.nodes.get(node as usize).and_then(Option::as_ref)
    }

    fn directory(&self, node: u32) -> Result<&BTreeMap<String, u32>, FileError> {
        match self.node(node) {
            Some(Node::Directory(entries)) => Ok(entries),
            Some(Node::File(_)) => Err(FileError::NotDirectory),
            None => Err(FileError::NotFound),
        }
    }

    /// The node a path names.
    fn resolve(&self, names: &[&str]) -> Result<u32, FileError> {
        let mut at = 0;
        for name in names {
            at = *self.directory(at)?.get(*name).ok_or(FileError::NotFound)?;
        }
        Ok(at)
    }

    /// The directory holding the path's last name, and that name.
    fn parent<'p>(&self, path: &'p [u8]) -> Result<(u32, &'p str), FileError> {
        let names = components(path)?;
        let (last, directories) = names.split_last().ok_or(FileError::RootDirectory)?;
        let parent = self.resolve(directories)?;
        self.directory(parent)?;
        Ok((parent, last))
    }

    /// The file an id names, if it still lives.
    fn file(&self, id: FileId) -> Result<&Vec<u8>, FileError> {
        if self.generations.get(id.node as usize) != Some(&id.generation) {
            return Err(FileError::Stale);
        }
        match self.node(id.node) {
            Some(Node::File(data)) => Ok(data),
            Some(Node::Directory(_)) => Err(FileError::IsDirectory),
            None => Err(FileError::Stale),
        }
    }

    fn file_mut(&mut self, id: FileId) -> Result<&mut Vec<u8>, FileError> {
        self.file(id)?;
        match self.nodes.get_mut(id.node as usize) {
            Some(Some(Node::File(data))) => Ok(data),
            _ => Err(FileError::Stale),
        }
    }

    /// Adds a node under `parent` as `name` (checked by the caller: free).
    fn insert(&mut self, parent: u32, name: &str, node: Node) -> Result<u32, FileError> {
        if self.live >= self.node_limit {
            return Err(FileError::TooManyNodes);
        }
        let slot = match self.nodes.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.nodes.push(None);
                self.generations.push(0);
                self.nodes.len() - 1
            }
        };
        let number = u32::try_from(slot).map_err(|_| FileError::TooManyNodes)?;
        self.nodes[slot] = Some(node);
        self.live += 1;
        if let Some(Some(Node::Directory(entries))) = self.nodes.get_mut(parent as usize) {
            entries.insert(name.to_string(), number);
        }
        Ok(number)
    }

    /// Removes `name` from `parent` and frees its node.
    fn remove(&mut self, parent: u32, name: &str, node: u32) {
        if let Some(Some(Node::Directory(entries))) = self.nodes.get_mut(parent as usize) {
            entries.remove(name);
        }
        if let Some(Some(Node::File(data))) = self.nodes.get(node as usize) {
            self.bytes -= data.len() as u64;
        }
        if let Some(slot) = self.nodes.get_mut(node as usize) {
            *slot = None;
            self.live -= 1;
        }
        if let Some(generation) = self.generations.get_mut(node as usize) {
            *generation = generation.wrapping_add(1);
        }
    }

    /// What OPEN would do, checked without changing anything: an existing
    /// file (`Ok(Some(node))`) or a new one (`Ok(None)`).
    fn plan_open(&self, path: &[u8], flags: u32) -> Result<Option<u32>, FileError> {
        if flags & !OPEN_FLAGS != 0 || (flags & EXCLUSIVE != 0 && flags & CREATE == 0) {
            return Err(FileError::BadRequest);
        }
        let (parent, name) = match self.parent(path) {
            Err(FileError::RootDirectory) => return Err(FileError::IsDirectory),
            other => other?,
        };
        match self.directory(parent)?.get(name).copied() {
            Some(_) if flags & EXCLUSIVE != 0 => Err(FileError::Exists),
            Some(node) => self.file(self.id(node)).map(|_| Some(node)),
            None if flags & CREATE == 0 => Err(FileError::NotFound),
            None if self.live >= self.node_limit => Err(FileError::TooManyNodes),
            None => Ok(None),
        }
    }

    /// Whether OPEN of `path` with `flags` would succeed (STREAM checks
    /// before it takes the pipe end, and opens after).
    pub fn check_open(&self, path: &[u8], flags: u32) -> Result<(), FileError> {
        self.plan_open(path, flags).map(drop)
    }

    /// OPEN: the file at `path` (made with CREATE, emptied with
    /// TRUNCATE) and its size. APPEND is the client's (where WRITE goes).
    pub fn open(&mut self, path: &[u8], flags: u32) -> Result<(FileId, u64), FileError> {
        match self.plan_open(path, flags)? {
            Some(node) => {
                let id = self.id(node);
                if flags & TRUNCATE != 0 {
                    let size = self.file(id)?.len() as u64;
                    self.bytes -= size;
                    self.file_mut(id)?.clear();
                }
                let size = self.file(id)?.len() as u64;
                Ok((id, size))
            }
            None => {
                let (parent, name) = self.parent(path)?;
                let node = self.insert(parent, name, Node::File(Vec::new()))?;
                Ok((self.id(node), 0))
            }
        }
    }

    /// READ: at most `length` bytes at `offset` (none at or past the end).
    pub fn read(&self, id: FileId, offset: u64, length: usize) -> Result<&[u8], FileError> {
        let data = self.file(id)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(length).min(data.len());
        Ok(&data[start..end])
    }

    /// WRITE: `bytes` at `offset` (`None`: at the end); where they went
    /// and the size after. All or nothing: a write that would pass the
    /// byte budget writes nothing.
    pub fn write(
        &mut self,
        id: FileId,
        offset: Option<u64>,
        bytes: &[u8],
    ) -> Result<(u64, u64), FileError> {
        let size = self.file(id)?.len() as u64;
        let offset = offset.unwrap_or(size);
        if offset > size {
            return Err(FileError::BadOffset);
        }
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or(FileError::NoSpace)?;
        let growth = end.saturating_sub(size);
        if self.bytes + growth > self.byte_limit {
            return Err(FileError::NoSpace);
        }
        let data = self.file_mut(id)?;
        let start = offset as usize;
        let overlap = data.len().min(start + bytes.len()) - start;
        data[start..start + overlap].copy_from_slice(&bytes[..overlap]);
        data.extend_from_slice(&bytes[overlap..]);
        self.bytes += growth;
        Ok((offset, end.max(size)))
    }

    /// TRUNCATE: the file's new size (a larger one adds zeros).
    pub fn truncate(&mut self, id: FileId, size: u64) -> Result<(), FileError> {
        let old = self.file(id)?.len() as u64;
        if size > old && self.bytes + (size - old) > self.byte_limit {
            return Err(FileError::NoSpace);
        }
        let new = usize::try_from(size).map_err(|_| FileError::NoSpace)?;
        self.file_mut(id)?.resize(new, 0);
        self.bytes = self.bytes - old + size;
        Ok(())
    }

    fn stat_node(&self, node: u32) -> Result<Stat, FileError> {
        let (kind, size) = match self.node(node) {
            Some(Node::File(data)) => (KIND_FILE, data.len() as u64),
            Some(Node::Directory(entries)) => (KIND_DIRECTORY, entries.len() as u64),
            None => return Err(FileError::NotFound),
        };
        Ok(Stat {
            kind,
            size,
            id: self.id(node),
        })
    }

    /// STAT of a path.
    pub fn stat(&self, path: &[u8]) -> Result<Stat, FileError> {
        let node = self.resolve(&components(path)?)?;
        self.stat_node(node)
    }

    /// UNLINK of a file.
    pub fn unlink(&mut self, path: &[u8]) -> Result<(), FileError> {
        let (parent, name) = match self.parent(path) {
            Err(FileError::RootDirectory) => return Err(FileError::IsDirectory),
            other => other?,
        };
        let node = *self
            .directory(parent)?
            .get(name)
            .ok_or(FileError::NotFound)?;
        if let Some(Node::Directory(_)) = self.node(node) {
            return Err(FileError::IsDirectory);
        }
        self.remove(parent, name, node);
        Ok(())
    }

    /// MKDIR.
    pub fn mkdir(&mut self, path: &[u8]) -> Result<(), FileError> {
        let (parent, name) = match self.parent(path) {
            Err(FileError::RootDirectory) => return Err(FileError::Exists),
            other => other?,
        };
        if self.directory(parent)?.contains_key(name) {
            return Err(FileError::Exists);
        }
        self.insert(parent, name, Node::Directory(BTreeMap::new()))
            .map(drop)
    }

    /// RMDIR of an empty directory.
    pub fn rmdir(&mut self, path: &[u8]) -> Result<(), FileError> {
        let (parent, name) = self.parent(path)?;
        let node = *self
            .directory(parent)?
            .get(name)
            .ok_or(FileError::NotFound)?;
        if !self.directory(node)?.is_empty() {
            return Err(FileError::NotEmpty);
        }
        self.remove(parent, name, node);
        Ok(())
    }

    /// LIST: a directory's entries in name order, each with its node's
    /// kind and size.
    pub fn list(&self, path: &[u8]) -> Result<Vec<(String, Stat)>, FileError> {
        let node = self.resolve(&components(path)?)?;
        self.directory(node)?
            .iter()
            .map(|(name, node)| Ok((name.clone(), self.stat_node(*node)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    /// The model: every path and what it is; a directory has no data.
    #[derive(Clone, Debug, Default)]
    struct Model {
        nodes: BTreeMap<Vec<String>, Option<Vec<u8>>>,
    }

    const BYTES: u64 = 64;
    const NODES: u32 = 6;

    impl Model {
        fn bytes(&self) -> u64 {
            self.nodes.values().flatten().map(|d| d.len() as u64).sum()
        }
        /// The check every operation shares: the parent exists and is a
        /// directory (each ancestor too).
        fn parent_ok(&self, path: &[String]) -> Result<(), FileError> {
            for depth in 1..path.len() {
                match self.nodes.get(&path[..depth]) {
                    None => return Err(FileError::NotFound),
                    Some(Some(_)) => return Err(FileError::NotDirectory),
                    Some(None) => {}
                }
            }
            Ok(())
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Open(Vec<String>, u32),
        Write(Vec<String>, Option<u64>, Vec<u8>),
        Truncate(Vec<String>, u64),
        Unlink(Vec<String>),
        Mkdir(Vec<String>),
        Rmdir(Vec<String>),
    }

    fn path() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
            .prop_map(|names| names.into_iter().map(String::from).collect())
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (path(), 0u32..16).prop_map(|(p, f)| Op::Open(p, f)),
            (
                path(),
                prop::option::of(0u64..24),
                prop::collection::vec(any::<u8>(), 0..24)
            )
                .prop_map(|(p, o, b)| Op::Write(p, o, b)),
            (path(), 0u64..40).prop_map(|(p, s)| Op::Truncate(p, s)),
            path().prop_map(Op::Unlink),
            path().prop_map(Op::Mkdir),
            path().prop_map(Op::Rmdir),
        ]
    }

    fn text(path: &[String]) -> Vec<u8> {
        std::format!("/{}", path.join("/")).into_bytes()
    }

    /// The model's answer to `op`, applied to it when it succeeds.
    fn model_apply(model: &mut Model, op: &Op) -> Result<(), FileError> {
        let room = BYTES - model.bytes();
        let full = model.nodes.len() as u32 + 1 >= NODES;
        match op {
            Op::Open(path, flags) => {
                if flags & EXCLUSIVE != 0 && flags & CREATE == 0 {
                    return Err(FileError::BadRequest);
                }
                model.parent_ok(path)?;
                match model.nodes.get(path) {
                    Some(None) if flags & EXCLUSIVE != 0 => Err(FileError::Exists),
                    Some(None) => Err(FileError::IsDirectory),
                    Some(Some(_)) if flags & EXCLUSIVE != 0 => Err(FileError::Exists),
                    Some(Some(_)) => {
                        if flags & TRUNCATE != 0 {
                            model.nodes.insert(path.clone(), Some(Vec::new()));
                        }
                        Ok(())
                    }
                    None if flags & CREATE == 0 => Err(FileError::NotFound),
                    None if full => Err(FileError::TooManyNodes),
                    None => {
                        model.nodes.insert(path.clone(), Some(Vec::new()));
                        Ok(())
                    }
                }
            }
            Op::Write(path, offset, bytes) => {
                let Some(Some(data)) = model.nodes.get_mut(path) else {
                    return Err(FileError::NotFound);
                };
                let at = offset.unwrap_or(data.len() as u64) as usize;
                if at > data.len() {
                    return Err(FileError::BadOffset);
                }
                let growth = (at + bytes.len()).saturating_sub(data.len()) as u64;
                if growth > room {
                    return Err(FileError::NoSpace);
                }
                data.truncate(at.max(data.len()));
                let mut new = data[..at].to_vec();
                new.extend_from_slice(bytes);
                if data.len() > new.len() {
                    new.extend_from_slice(&data[new.len()..]);
                }
                *data = new;
                Ok(())
            }
            Op::Truncate(path, size) => {
                let Some(Some(data)) = model.nodes.get_mut(path) else {
                    return Err(FileError::NotFound);
                };
                if *size > data.len() as u64 && size - data.len() as u64 > room {
                    return Err(FileError::NoSpace);
                }
                data.resize(*size as usize, 0);
                Ok(())
            }
            Op::Unlink(path) => {
                model.parent_ok(path)?;
                match model.nodes.get(path) {
                    None => Err(FileError::NotFound),
                    Some(None) => Err(FileError::IsDirectory),
                    Some(Some(_)) => {
                        model.nodes.remove(path);
                        Ok(())
                    }
                }
            }
            Op::Mkdir(path) => {
                model.parent_ok(path)?;
                if model.nodes.contains_key(path) {
                    return Err(FileError::Exists);
                }
                if full {
                    return Err(FileError::TooManyNodes);
                }
                model.nodes.insert(path.clone(), None);
                Ok(())
            }
            Op::Rmdir(path) => {
                model.parent_ok(path)?;
                match model.nodes.get(path) {
                    None => Err(FileError::NotFound),
                    Some(Some(_)) => Err(FileError::NotDirectory),
                    Some(None) => {
                        if model
                            .nodes
                            .keys()
                            .any(|k| k.len() > path.len() && k.starts_with(path))
                        {
                            return Err(FileError::NotEmpty);
                        }
                        model.nodes.remove(path);
                        Ok(())
                    }
                }
            }
        }
    }

    /// The store's answer; WRITE and TRUNCATE open the file first (without
    /// flags), as a client does.
    fn store_apply(store: &mut Store, op: &Op) -> Result<(), FileError> {
        match op {
            Op::Open(path, flags) => {
                let checked = store.check_open(&text(path), *flags);
                let opened = store.open(&text(path), *flags).map(drop);
                assert_eq!(checked, opened, "check_open disagrees with open");
                opened
            }
            Op::Write(path, offset, bytes) => {
                let (id, _) = store.open(&text(path), 0).map_err(|e| match e {
                    FileError::IsDirectory | FileError::NotDirectory => FileError::NotFound,
                    e => e,
                })?;
                store.write(id, *offset, bytes).map(drop)
            }
            Op::Truncate(path, size) => {
                let (id, _) = store.open(&text(path), 0).map_err(|e| match e {
                    FileError::IsDirectory | FileError::NotDirectory => FileError::NotFound,
                    e => e,
                })?;
                store.truncate(id, *size)
            }
            Op::Unlink(path) => store.unlink(&text(path)),
            Op::Mkdir(path) => store.mkdir(&text(path)),
            Op::Rmdir(path) => store.rmdir(&text(path)),
        }
    }

    /// Every path of the store with its contents, read back through its
    /// own calls.
    fn contents(store: &Store) -> BTreeMap<Vec<String>, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut pending = vec![Vec::<String>::new()];
        while let Some(dir) = pending.pop() {
            for (name, stat) in store.list(&text(&dir)).unwrap_or_default() {
                let mut path = dir.clone();
                path.push(name);
                if stat.kind == KIND_DIRECTORY {
                    out.insert(path.clone(), None);
                    pending.push(path);
                } else {
                    let data = store.read(stat.id, 0, usize::MAX).map(<[u8]>::to_vec);
                    out.insert(path, Some(data.unwrap_or_default()));
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn the_store_behaves_as_its_model_and_refusals_change_nothing(
            ops in prop::collection::vec(op(), 1..60)
        ) {
            let mut store = Store::new(BYTES, NODES);
            let mut model = Model::default();
            for op in &ops {
                let before = store.clone();
                let expected = model_apply(&mut model, op);
                let got = store_apply(&mut store, op);
                prop_assert_eq!(got, expected, "{:?}", op);
                if got.is_err() {
                    prop_assert_eq!(&store, &before, "a refused {:?} changed the store", op);
                }
                prop_assert_eq!(contents(&store), model.nodes.clone());
                prop_assert_eq!(store.bytes(), model.bytes());
                prop_assert_eq!(store.nodes(), model.nodes.len() as u32 + 1);
                prop_assert!(store.bytes() <= BYTES && store.nodes() <= NODES);
            }
        }

        #[test]
        fn no_path_panics_and_bad_ones_are_bad_path(path in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut store = Store::new(BYTES, NODES);
            let before = store.clone();
            let _ = store.stat(&path);
            let _ = store.list(&path);
            let _ = store.unlink(&path);
            let _ = store.rmdir(&path);
            if components(&path).is_err() {
                prop_assert_eq!(store.mkdir(&path), Err(FileError::BadPath));
                prop_assert_eq!(store.open(&path, CREATE).map(drop), Err(FileError::BadPath));
                prop_assert_eq!(&store, &before);
            }
        }
    }

    #[test]
    fn paths_are_checked() {
        let ok: &[&[u8]] = &[b"/", b"/a", b"/a/b"];
        for path in ok {
            assert!(components(path).is_ok(), "{path:?}");
        }
        let long_name = std::format!("/{}", "x".repeat(MAX_NAME + 1));
        let long_path = "/x".repeat(MAX_PATH / 2 + 1);
        let bad: &[&[u8]] = &[
            b"",
            b"a",
            b"/a/",
            b"//a",
            b"/./a",
            b"/a/..",
            b"/\xff",
            long_name.as_bytes(),
            long_path.as_bytes(),
        ];
        for path in bad {
            assert_eq!(components(path), Err(FileError::BadPath), "{path:?}");
        }
    }

    #[test]
    fn ids_of_unlinked_files_are_stale_even_when_the_node_is_reused() {
        let mut store = Store::new(BYTES, NODES);
        let (old, _) = store.open(b"/a", CREATE).expect("the store accepts it");
        store
            .write(old, None, b"hello")
            .expect("the store accepts it");
        store.unlink(b"/a").expect("the store accepts it");
        let (new, _) = store.open(b"/b", CREATE).expect("the store accepts it");
        assert_eq!(new.node, old.node);
        assert_eq!(store.read(old, 0, 10), Err(FileError::Stale));
        assert_eq!(store.write(old, None, b"x"), Err(FileError::Stale));
        assert_eq!(store.read(new, 0, 10), Ok(&b""[..]));
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn the_root_is_special() {
        let mut store = Store::new(BYTES, NODES);
        assert_eq!(store.rmdir(b"/"), Err(FileError::RootDirectory));
        assert_eq!(store.mkdir(b"/"), Err(FileError::Exists));
        assert_eq!(store.unlink(b"/"), Err(FileError::IsDirectory));
        assert_eq!(
            store.open(b"/", CREATE).map(drop),
            Err(FileError::IsDirectory)
        );
        assert_eq!(store.stat(b"/").map(|s| s.kind), Ok(KIND_DIRECTORY));
    }
}
