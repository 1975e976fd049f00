//! The socket registry (seed 001's 1-to-1 socket mailboxes; ABI.md §7a.3)
//! and the standard-stream records of the processes SPAWN gave streams.
//!
//! A socket lives at a port (1..=`MAX_PORT`); it has a creator side and a
//! connector side, each held by the processes procman recorded: the
//! creator, the one connector a socket ever gets, and the children either
//! gave the side to as a standard stream. A side is gone when its last
//! reference goes, by SOCKET_CLOSE (the peer reads end of stream) or by
//! its holder's end (the peer gets `PM_PEER_DIED`); the socket and its port
//! go when both sides are.
//!
//! Every request is checked before anything changes, so a refusal changes
//! nothing. This module never makes a kernel call and never trusts what a
//! caller says about itself: callers are the process ids procman gave them.

use abi::procman::ProcmanError;
use abi::stream::{
    CONNECTOR, CREATOR, FIRST_EPHEMERAL_PORT, MAX_PORT, STREAM_NONE, STREAM_PIPE, STREAM_SOCKET,
    StdStream,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Socket end references one process may hold at once.
pub const MAX_SOCKET_ENDS_PER_PROCESS: usize = 16;

/// procman's descriptors of one socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketEntry {
    /// The memory object holding both rings.
    pub object: u32,
    /// Ring A's (creator to connector) data, room and lock events, then
    /// ring B's.
    pub events: [u32; 6],
}

impl SocketEntry {
    /// Its descriptors, to close when the socket goes.
    pub fn descriptors(&self) -> [u32; 7] {
        let e = self.events;
        [self.object, e[0], e[1], e[2], e[3], e[4], e[5]]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EndRecord {
    pid: u32,
    port: u32,
    side: u32,
    opened: bool,
}

#[derive(Clone, Copy, Debug)]
struct Socket {
    entry: SocketEntry,
    /// A connector came (sockets are 1 to 1: never a second one).
    connected: bool,
    /// The process that created it (NAME_LIST's owner of `/sock/<port>`).
    creator: u32,
}

/// A live socket as NAME_LIST shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedSocket {
    /// Its port.
    pub port: u32,
    /// The process that created it.
    pub creator: u32,
    /// Whether it has had its connector.
    pub connected: bool,
}

/// A side whose last reference went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketSideGone {
    /// The socket's port.
    pub port: u32,
    /// [`CREATOR`] or [`CONNECTOR`].
    pub side: u32,
    /// Its last holder ended rather than closed it.
    pub died: bool,
}

/// What a close or a process's end changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketsReleased {
    /// Sides whose last reference went.
    pub sides: Vec<SocketSideGone>,
    /// Sockets nobody holds any side of: procman closes their descriptors.
    pub freed: Vec<(u32, SocketEntry)>,
    /// Sockets the ended process may hold a ring lock of.
    pub touched: Vec<u32>,
}

/// Every socket and every end reference.
#[derive(Debug)]
pub struct SocketTable {
    sockets: BTreeMap<u32, Socket>,
    ends: Vec<EndRecord>,
    /// Where the search for a free port (SOCKET_CREATE of 0) goes on.
    next_free: u32,
}

impl Default for SocketTable {
    fn default() -> Self {
        SocketTable {
            sockets: BTreeMap::new(),
            ends: Vec::new(),
            next_free: FIRST_EPHEMERAL_PORT,
        }
    }
}

fn named_port(port: u32) -> Result<u32, ProcmanError> {
    if port == 0 || port > MAX_PORT {
        Err(ProcmanError::SocketBadPort)
    } else {
        Ok(port)
    }
}

impl SocketTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live sockets.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    /// End references held, over every process.
    pub fn ends(&self) -> usize {
        self.ends.len()
    }

    /// Descriptors procman holds for sockets.
    pub fn descriptors(&self) -> usize {
        self.sockets.len() * 7
    }

    /// The ports of the live sockets, in order (LIST of `/sock`).
    pub fn ports(&self) -> impl Iterator<Item = u32> + '_ {
        self.sockets.keys().copied()
    }

    /// The live sockets in port order, with their creators (NAME_LIST of
    /// `/sock`).
    pub fn listing(&self) -> impl Iterator<Item = ListedSocket> + '_ {
        self.sockets.iter().map(|(&port, socket)| ListedSocket {
            port,
            creator: socket.creator,
            connected: socket.connected,
        })
    }

    /// The entry of the socket at `port`.
    pub fn get(&self, port: u32) -> Option<&SocketEntry> {
        self.sockets.get(&port).map(|s| &s.entry)
    }

    fn held_by(&self, pid: u32) -> usize {
        self.ends.iter().filter(|r| r.pid == pid).count()
    }

    fn room_for(&self, pid: u32) -> Result<(), ProcmanError> {
        if self.held_by(pid) >= MAX_SOCKET_ENDS_PER_PROCESS {
            Err(ProcmanError::TooManySocketEnds)
        } else {
            Ok(())
        }
    }

    /// The side of the socket at `port` that `pid` holds.
    pub fn side_of(&self, pid: u32, port: u32) -> Result<u32, ProcmanError> {
        let port = named_port(port)?;
        if !self.sockets.contains_key(&port) {
            return Err(ProcmanError::NoSuchSocket);
        }
        self.ends
            .iter()
            .find(|r| r.pid == pid && r.port == port)
            .map(|r| r.side)
            .ok_or(ProcmanError::NotSocketEnd)
    }

    /// SOCKET_CREATE's checks: the port `pid` gets (0 picks a free one).
    /// Call [`Self::insert`] with it once the socket's objects exist.
    pub fn check_create(&self, pid: u32, port: u32) -> Result<u32, ProcmanError> {
        if port > MAX_PORT {
            return Err(ProcmanError::SocketBadPort);
        }
        self.room_for(pid)?;
        if port != 0 {
            if self.sockets.contains_key(&port) {
                return Err(ProcmanError::PortTaken);
            }
            return Ok(port);
        }
        let span = MAX_PORT - FIRST_EPHEMERAL_PORT + 1;
        (0..span)
            .map(|i| FIRST_EPHEMERAL_PORT + (self.next_free - FIRST_EPHEMERAL_PORT + i) % span)
            .find(|p| !self.sockets.contains_key(p))
            .ok_or(ProcmanError::NoFreePort)
    }

    /// Records a new socket at `port` (from [`Self::check_create`]) whose
    /// creator side `pid` holds, opened.
    pub fn insert(&mut self, pid: u32, port: u32, entry: SocketEntry) {
        if port >= FIRST_EPHEMERAL_PORT {
            self.next_free = if port == MAX_PORT {
                FIRST_EPHEMERAL_PORT
            } else {
                port + 1
            };
        }
        self.sockets.insert(
            port,
            Socket {
                entry,
                connected: false,
                creator: pid,
            },
        );
        self.ends.push(EndRecord {
            pid,
            port,
            side: CREATOR,
            opened: true,
        });
    }

    /// SOCKET_CONNECT: `pid` becomes the connector of the socket at `port`.
    pub fn connect(&mut self, pid: u32, port: u32) -> Result<SocketEntry, ProcmanError> {
        let port = named_port(port)?;
        let socket = self
            .sockets
            .get(&port)
            .copied()
            .ok_or(ProcmanError::NoSuchSocket)?;
        if self
            .ends
            .iter()
            .any(|r| r.pid == pid && r.port == port && r.side == CREATOR)
        {
            return Err(ProcmanError::SocketSelfConnect);
        }
        if socket.connected {
            return Err(ProcmanError::SocketConnected);
        }
        self.room_for(pid)?;
        if let Some(s) = self.sockets.get_mut(&port) {
            s.connected = true;
        }
        self.ends.push(EndRecord {
            pid,
            port,
            side: CONNECTOR,
            opened: true,
        });
        Ok(socket.entry)
    }

    /// Undoes a [`Self::connect`] whose reply could not be sent: the
    /// socket waits for its connector again.
    pub fn unconnect(&mut self, pid: u32, port: u32) {
        if let Some(index) = self
            .ends
            .iter()
            .position(|r| r.pid == pid && r.port == port && r.side == CONNECTOR)
        {
            self.ends.swap_remove(index);
            if let Some(s) = self.sockets.get_mut(&port) {
                s.connected = false;
            }
        }
    }

    /// SOCKET_CLOSE: `pid` gives up one reference of its side (an opened
    /// one before a granted one).
    pub fn close(&mut self, pid: u32, port: u32) -> Result<SocketsReleased, ProcmanError> {
        let side = self.side_of(pid, port)?;
        let index = self
            .ends
            .iter()
            .position(|r| r.pid == pid && r.port == port && r.opened)
            .or_else(|| {
                self.ends
                    .iter()
                    .position(|r| r.pid == pid && r.port == port)
            })
            .ok_or(ProcmanError::NotSocketEnd)?;
        self.ends.swap_remove(index);
        let mut released = SocketsReleased::default();
        self.settle(port, side, false, &mut released);
        Ok(released)
    }

    /// Gives the new process `to` one granted reference of the side of the
    /// socket at `port` that `from` holds (a standard stream; checked with
    /// [`Self::side_of`]).
    pub fn grant_stream(&mut self, from: u32, port: u32, to: u32) {
        if let Ok(side) = self.side_of(from, port) {
            self.ends.push(EndRecord {
                pid: to,
                port,
                side,
                opened: false,
            });
        }
    }

    /// STDIO_OPEN of a socket stream: `pid` takes the descriptors of a
    /// granted reference; its side.
    pub fn open(&mut self, pid: u32, port: u32) -> Result<(SocketEntry, u32), ProcmanError> {
        let entry = self
            .sockets
            .get(&port)
            .map(|s| s.entry)
            .ok_or(ProcmanError::NoSuchSocket)?;
        let record = self
            .ends
            .iter_mut()
            .find(|r| r.pid == pid && r.port == port && !r.opened)
            .ok_or(ProcmanError::NotSocketEnd)?;
        record.opened = true;
        Ok((entry, record.side))
    }

    /// Undoes an [`Self::open`] whose reply could not be sent.
    pub fn unopen(&mut self, pid: u32, port: u32) {
        if let Some(r) = self
            .ends
            .iter_mut()
            .find(|r| r.pid == pid && r.port == port && r.opened)
        {
            r.opened = false;
        }
    }

    /// Process `pid` ended: every reference it held goes; a side that
    /// goes with it died.
    pub fn exited(&mut self, pid: u32) -> SocketsReleased {
        let mut released = SocketsReleased::default();
        let mut held: Vec<(u32, u32)> = Vec::new();
        self.ends.retain(|r| {
            if r.pid == pid {
                held.push((r.port, r.side));
                false
            } else {
                true
            }
        });
        held.sort_unstable();
        held.dedup();
        for &(port, side) in &held {
            if !released.touched.contains(&port) {
                released.touched.push(port);
            }
            self.settle(port, side, true, &mut released);
        }
        released
    }

    fn settle(&mut self, port: u32, side: u32, died: bool, released: &mut SocketsReleased) {
        if !self.ends.iter().any(|r| r.port == port && r.side == side) {
            released.sides.push(SocketSideGone { port, side, died });
        }
        if !self.ends.iter().any(|r| r.port == port)
            && let Some(socket) = self.sockets.remove(&port)
        {
            released.freed.push((port, socket.entry));
        }
    }
}

/// The standard streams SPAWN gave each process, and which it opened.
#[derive(Debug, Default)]
pub struct StdioTable {
    records: BTreeMap<u32, [(StdStream, bool); 3]>,
}

impl StdioTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Processes with a record.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no process has a record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records `streams` for the new process `pid` (only when it has one).
    pub fn insert(&mut self, pid: u32, streams: [StdStream; 3]) {
        if streams.iter().any(|s| s.kind != STREAM_NONE) {
            self.records.insert(pid, streams.map(|s| (s, false)));
        }
    }

    /// The streams of `pid` (none when it has no record).
    pub fn streams(&self, pid: u32) -> [StdStream; 3] {
        self.records
            .get(&pid)
            .map_or([StdStream::NONE; 3], |r| r.map(|(s, _)| s))
    }

    /// STDIO_OPEN's checks: the stream `stream` of `pid`, not opened yet.
    pub fn check_open(&self, pid: u32, stream: u32) -> Result<StdStream, ProcmanError> {
        let index = usize::try_from(stream)
            .ok()
            .filter(|i| *i < 3)
            .ok_or(ProcmanError::StdioBadStream)?;
        let (s, opened) = self
            .records
            .get(&pid)
            .map_or((StdStream::NONE, false), |r| r[index]);
        if s.kind == STREAM_NONE {
            return Err(ProcmanError::NoStdioStream);
        }
        if opened {
            return Err(ProcmanError::StdioOpened);
        }
        Ok(s)
    }

    /// Marks stream `stream` of `pid` opened (after [`Self::check_open`]).
    pub fn opened(&mut self, pid: u32, stream: u32) {
        if let Some(r) = self.records.get_mut(&pid)
            && let Some(entry) = r.get_mut(stream as usize)
        {
            entry.1 = true;
        }
    }

    /// Process `pid` ended.
    pub fn exited(&mut self, pid: u32) {
        self.records.remove(&pid);
    }
}

/// A standard stream's kind is one SPAWN takes (NONE has no number).
pub fn check_stream_kind(stream: StdStream) -> Result<(), ProcmanError> {
    match stream.kind {
        STREAM_NONE if stream.number == 0 => Ok(()),
        STREAM_PIPE | STREAM_SOCKET => Ok(()),
        _ => Err(ProcmanError::StdioBadKind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENTRY: SocketEntry = SocketEntry {
        object: 1,
        events: [2, 3, 4, 5, 6, 7],
    };

    #[test]
    fn ports_are_taken_once_and_zero_picks_a_free_one() {
        let mut table = SocketTable::new();
        assert_eq!(table.check_create(1, 80), Ok(80));
        table.insert(1, 80, ENTRY);
        assert_eq!(table.check_create(2, 80), Err(ProcmanError::PortTaken));
        assert_eq!(
            table.check_create(2, MAX_PORT + 1),
            Err(ProcmanError::SocketBadPort)
        );
        let first = table.check_create(2, 0).expect("free");
        assert_eq!(first, FIRST_EPHEMERAL_PORT);
        table.insert(2, first, ENTRY);
        assert_eq!(table.check_create(2, 0), Ok(FIRST_EPHEMERAL_PORT + 1));
        assert_eq!(table.connect(3, 0), Err(ProcmanError::SocketBadPort));
        assert_eq!(table.connect(3, 81), Err(ProcmanError::NoSuchSocket));
        assert_eq!(table.connect(1, 80), Err(ProcmanError::SocketSelfConnect));
        assert_eq!(table.connect(3, 80), Ok(ENTRY));
        assert_eq!(table.connect(4, 80), Err(ProcmanError::SocketConnected));
        assert_eq!(table.side_of(4, 80), Err(ProcmanError::NotSocketEnd));
        assert_eq!(table.close(4, 80), Err(ProcmanError::NotSocketEnd));
        assert_eq!(table.side_of(3, 80), Ok(CONNECTOR));
    }

    #[test]
    fn a_close_is_end_of_stream_and_a_death_is_peer_died() {
        let mut table = SocketTable::new();
        table.insert(1, 7, ENTRY);
        table.connect(2, 7).expect("connects");
        let closed = table.close(2, 7).expect("held");
        assert_eq!(
            closed.sides,
            [SocketSideGone {
                port: 7,
                side: CONNECTOR,
                died: false
            }]
        );
        assert!(closed.freed.is_empty());
        assert_eq!(
            table.connect(3, 7),
            Err(ProcmanError::SocketConnected),
            "1 to 1 for life"
        );
        let died = table.exited(1);
        assert_eq!(
            died.sides,
            [SocketSideGone {
                port: 7,
                side: CREATOR,
                died: true
            }]
        );
        assert_eq!(died.freed, [(7, ENTRY)]);
        assert_eq!((table.sockets(), table.ends()), (0, 0));
        assert_eq!(table.check_create(9, 7), Ok(7), "the port is free again");
    }

    #[test]
    fn a_side_given_as_a_stream_counts_until_its_last_holder() {
        let mut table = SocketTable::new();
        table.insert(1, 7, ENTRY);
        table.connect(2, 7).expect("connects");
        table.grant_stream(2, 7, 3);
        assert_eq!(table.open(3, 7), Ok((ENTRY, CONNECTOR)));
        assert_eq!(table.open(3, 7), Err(ProcmanError::NotSocketEnd));
        assert!(table.close(2, 7).expect("held").sides.is_empty());
        assert_eq!(table.exited(3).sides.len(), 1);
    }

    #[test]
    fn stdio_records_open_each_stream_once() {
        let mut stdio = StdioTable::new();
        stdio.insert(5, [StdStream::NONE; 3]);
        assert!(stdio.is_empty(), "no streams, no record");
        stdio.insert(5, [StdStream::NONE, StdStream::pipe(3), StdStream::NONE]);
        assert_eq!(stdio.check_open(5, 0), Err(ProcmanError::NoStdioStream));
        assert_eq!(stdio.check_open(5, 3), Err(ProcmanError::StdioBadStream));
        assert_eq!(stdio.check_open(5, 1), Ok(StdStream::pipe(3)));
        stdio.opened(5, 1);
        assert_eq!(stdio.check_open(5, 1), Err(ProcmanError::StdioOpened));
        stdio.exited(5);
        assert_eq!(stdio.len(), 0);
        assert_eq!(
            check_stream_kind(StdStream { kind: 3, number: 0 }),
            Err(ProcmanError::StdioBadKind)
        );
        assert_eq!(
            check_stream_kind(StdStream { kind: 0, number: 1 }),
            Err(ProcmanError::StdioBadKind)
        );
    }

    proptest! {
        /// Random creates, connects, grants, closes and exits: a side is
        /// reported gone exactly when its last reference goes, a socket is
        /// freed exactly when neither side has one, no socket ever has two
        /// connectors, and once every process ended nothing is left.
        #[test]
        fn sides_and_sockets_go_exactly_with_their_last_reference(
            steps in proptest::collection::vec((0u8..5, 1u32..5, 0u32..4, 1u32..5), 1..150)
        ) {
            let mut table = SocketTable::new();
            for (kind, pid, port, to) in steps {
                let port = if port == 0 { 0 } else { 100 + port };
                let released = match kind {
                    0 => {
                        if let Ok(p) = table.check_create(pid, port) {
                            table.insert(pid, p, ENTRY);
                        }
                        SocketsReleased::default()
                    }
                    1 => { let _ = table.connect(pid, port); SocketsReleased::default() }
                    2 => {
                        if table.side_of(pid, port).is_ok() && table.side_of(to, port).is_err() && table.room_for(to).is_ok() {
                            table.grant_stream(pid, port, to);
                        }
                        SocketsReleased::default()
                    }
                    3 => table.close(pid, port).unwrap_or_default(),
                    _ => table.exited(pid),
                };
                for side in &released.sides {
                    prop_assert!(!table.ends.iter().any(|r| r.port == side.port && r.side == side.side));
                }
                for (port, _) in &released.freed {
                    prop_assert!(table.get(*port).is_none());
                }
                for port in table.ports() {
                    prop_assert!(table.ends.iter().any(|r| r.port == port));
                    let connectors: Vec<u32> = table.ends.iter()
                        .filter(|r| r.port == port && r.side == CONNECTOR)
                        .map(|r| r.pid).collect();
                    prop_assert!(connectors.is_empty() || table.sockets[&port].connected);
                }
                for r in &table.ends {
                    let creators = table.ends.iter().any(|o| o.pid == r.pid && o.port == r.port && o.side != r.side);
                    prop_assert!(!creators, "a process holds both sides");
                }
            }
            for pid in 1..5 {
                table.exited(pid);
            }
            prop_assert_eq!((table.sockets(), table.ends()), (0, 0));
        }
    }
}
