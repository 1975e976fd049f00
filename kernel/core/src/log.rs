//! The kernel's log once user space has taken COM1 over (LOG_TAKE, ABI.md
//! §6.7): a bounded ring of whole lines that the console server reads
//! (LOG_READ), fed by two sources that each keep their unfinished line
//! apart, so the kernel's lines and user output never meet mid-line.
//!
//! It never blocks and never allocates: a line that does not fit pushes the
//! oldest whole lines out, and they are counted as lost. It must never
//! touch hardware: the machine owns the serial port and asks this ring
//! what to write there.

use abi::kcall::MAX_LOG_LINE;

/// Who wrote a piece of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The kernel's own lines (`hinge: ...`).
    Kernel,
    /// User output (DEBUG_WRITE), already marked line by line.
    User,
}

/// One source's line in progress.
#[derive(Debug)]
struct Partial {
    bytes: [u8; MAX_LOG_LINE],
    length: usize,
}

impl Partial {
    const fn new() -> Self {
        Partial {
            bytes: [0; MAX_LOG_LINE],
            length: 0,
        }
    }
}

/// What a LOG_READ may take: `bytes` of `lines` whole lines at the head of
/// the ring, and the lines lost since the last read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peeked {
    /// Bytes copied out (whole lines).
    pub bytes: usize,
    /// Lines among them.
    pub lines: u32,
    /// Lines dropped since the last [`KernelLog::consume`].
    pub lost: u32,
}

/// The ring of `N` bytes, and whether it is in use (taken) at all.
#[derive(Debug)]
pub struct KernelLog<const N: usize> {
    ring: [u8; N],
    /// Index of the oldest byte.
    head: usize,
    /// Bytes held (whole lines only).
    length: usize,
    lost: u32,
    /// Lines arrived since [`KernelLog::take_arrived`] last said so.
    arrived: bool,
    taken: bool,
    kernel: Partial,
    user: Partial,
}

impl<const N: usize> Default for KernelLog<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> KernelLog<N> {
    /// An empty log, not taken: writes go straight to the serial port.
    pub const fn new() -> Self {
        KernelLog {
            ring: [0; N],
            head: 0,
            length: 0,
            lost: 0,
            arrived: false,
            taken: false,
            kernel: Partial::new(),
            user: Partial::new(),
        }
    }

    /// Whether the lines go to the ring (taken) rather than the port.
    pub fn is_taken(&self) -> bool {
        self.taken
    }

    /// From now on lines go to the ring.
    pub fn take(&mut self) {
        self.taken = true;
    }

    /// The port is the kernel's again: every line still in the ring, then
    /// each source's unfinished line, go to `serial` in order, and the
    /// ring starts empty.
    pub fn give_back(&mut self, mut serial: impl FnMut(&[u8])) {
        while self.length > 0 {
            let (first, second) = self.held();
            serial(first);
            serial(second);
            self.length = 0;
        }
        for partial in [&mut self.kernel, &mut self.user] {
            serial(&partial.bytes[..partial.length]);
            partial.length = 0;
        }
        self.head = 0;
        self.lost = 0;
        self.arrived = false;
        self.taken = false;
    }

    /// Writes `bytes` from `source`: to `serial` when the log is not taken,
    /// else into the source's line, which enters the ring whole at its
    /// `\n` or when it reaches [`MAX_LOG_LINE`] bytes (then cut, with a
    /// `\n` added).
    pub fn write(&mut self, source: Source, bytes: &[u8], mut serial: impl FnMut(&[u8])) {
        if !self.taken {
            serial(bytes);
            return;
        }
        for &byte in bytes {
            let partial = match source {
                Source::Kernel => &mut self.kernel,
                Source::User => &mut self.user,
            };
            partial.bytes[partial.length] = byte;
            partial.length += 1;
            let full = partial.length == MAX_LOG_LINE - 1;
            if byte == b'\n' || full {
                if full && byte != b'\n' {
                    partial.bytes[partial.length] = b'\n';
                    partial.length += 1;
                }
                let line = partial.bytes;
                let length = partial.length;
                partial.length = 0;
                self.push_line(&line[..length]);
            }
        }
    }

    /// Appends one whole line, pushing the oldest out while it does not fit.
    fn push_line(&mut self, line: &[u8]) {
        if line.len() > N {
            self.lost = self.lost.saturating_add(1);
            return;
        }
        while N - self.length < line.len() {
            self.drop_oldest();
        }
        for &byte in line {
            let at = (self.head + self.length) % N;
            self.ring[at] = byte;
            self.length += 1;
        }
        self.arrived = true;
    }

    fn drop_oldest(&mut self) {
        let mut dropped = 0;
        while dropped < self.length {
            let byte = self.ring[(self.head + dropped) % N];
            dropped += 1;
            if byte == b'\n' {
                break;
            }
        }
        self.head = (self.head + dropped) % N;
        self.length -= dropped;
        self.lost = self.lost.saturating_add(1);
    }

    /// The held bytes, as the two pieces of the ring they occupy.
    fn held(&self) -> (&[u8], &[u8]) {
        let end = self.head + self.length;
        if end <= N {
            (&self.ring[self.head..end], &[])
        } else {
            (&self.ring[self.head..], &self.ring[..end - N])
        }
    }

    /// Copies as many whole lines from the head as fit in `out`, without
    /// taking them ([`KernelLog::consume`] does, once they reached the
    /// reader).
    pub fn peek(&self, out: &mut [u8]) -> Peeked {
        let mut bytes = 0;
        let mut lines = 0;
        let mut at = 0;
        while at < self.length && at < out.len() {
            let byte = self.ring[(self.head + at) % N];
            out[at] = byte;
            at += 1;
            if byte == b'\n' {
                bytes = at;
                lines += 1;
            }
        }
        Peeked {
            bytes,
            lines,
            lost: self.lost,
        }
    }

    /// Takes the first `bytes` (whole lines a [`KernelLog::peek`] gave) out
    /// of the ring, and resets the lost count it reported.
    pub fn consume(&mut self, bytes: usize) {
        let bytes = bytes.min(self.length);
        self.head = (self.head + bytes) % N;
        self.length -= bytes;
        self.lost = 0;
    }

    /// Whether lines arrived since the last call (then it says no until
    /// more do).
    pub fn take_arrived(&mut self) -> bool {
        core::mem::take(&mut self.arrived)
    }

    /// Bytes of whole lines waiting in the ring.
    pub fn held_bytes(&self) -> usize {
        self.length
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all<const N: usize>(log: &mut KernelLog<N>) -> (Vec<u8>, u32) {
        let mut out = vec![0; N + 1];
        let peeked = log.peek(&mut out);
        log.consume(peeked.bytes);
        out.truncate(peeked.bytes);
        (out, peeked.lost)
    }

    #[test]
    fn untaken_writes_go_to_the_port_as_they_come() {
        let mut log = KernelLog::<64>::new();
        let mut port = Vec::new();
        log.write(Source::User, b"| par", |b| port.extend_from_slice(b));
        assert_eq!(port, b"| par");
        assert_eq!(log.held_bytes(), 0);
        assert!(!log.take_arrived());
    }

    #[test]
    fn sources_never_meet_mid_line() {
        let mut log = KernelLog::<256>::new();
        log.take();
        let mut port = Vec::new();
        log.write(Source::User, b"| echo: hal", |b| port.extend_from_slice(b));
        log.write(Source::Kernel, b"hinge: one\n", |b| {
            port.extend_from_slice(b)
        });
        assert!(log.take_arrived());
        assert!(!log.take_arrived());
        log.write(Source::User, b"f\n", |b| port.extend_from_slice(b));
        assert!(port.is_empty());
        assert_eq!(
            read_all(&mut log),
            (b"hinge: one\n| echo: half\n".to_vec(), 0)
        );
    }

    #[test]
    fn a_full_ring_drops_the_oldest_lines_and_counts_them() {
        let mut log = KernelLog::<16>::new();
        log.take();
        for line in [&b"aaaa\n"[..], b"bbbb\n", b"cccc\n", b"dddd\n"] {
            log.write(Source::Kernel, line, |_| unreachable!());
        }
        assert_eq!(read_all(&mut log), (b"bbbb\ncccc\ndddd\n".to_vec(), 1));
        assert_eq!(read_all(&mut log), (Vec::new(), 0));
    }

    #[test]
    fn a_read_too_small_for_a_line_takes_nothing() {
        let mut log = KernelLog::<64>::new();
        log.take();
        log.write(Source::Kernel, b"hinge: long line\n", |_| {});
        let mut out = [0u8; 4];
        assert_eq!(log.peek(&mut out).bytes, 0);
        assert_eq!(log.held_bytes(), 17);
    }

    #[test]
    fn giving_back_flushes_lines_then_unfinished_ones() {
        let mut log = KernelLog::<32>::new();
        log.take();
        log.write(Source::User, b"| x", |_| {});
        log.write(Source::Kernel, b"hinge: a\nhinge: b", |_| {});
        let mut port = Vec::new();
        log.give_back(|b| port.extend_from_slice(b));
        assert_eq!(port, b"hinge: a\nhinge: b| x");
        assert!(!log.is_taken());
        assert_eq!(log.held_bytes(), 0);
    }

    proptest! {
        /// Whatever is written, in whatever pieces and however small the
        /// ring: reads give whole lines only, each one a line of a source
        /// in that source's order, and the lines read plus the lines lost
        /// are the lines written.
        #[test]
        fn lines_read_and_lost_add_up(
            writes in prop::collection::vec(
                (any::<bool>(), prop::collection::vec(prop::sample::select(b"ab\n".to_vec()), 0..40)),
                0..40,
            ),
            read_every in 1usize..8,
        ) {
            let mut log = KernelLog::<64>::new();
            log.take();
            let mut written = [0usize; 2];
            let mut source_lines: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
            let mut current: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            let mut read = Vec::new();
            let mut lost = 0u32;
            for (i, (kernel, bytes)) in writes.iter().enumerate() {
                let (source, s) = if *kernel { (Source::Kernel, 0) } else { (Source::User, 1) };
                let mark = if *kernel { b'K' } else { b'U' };
                let tagged: Vec<u8> = bytes.iter().map(|b| if *b == b'\n' { b'\n' } else { mark }).collect();
                log.write(source, &tagged, |_| panic!("taken"));
                for byte in tagged {
                    current[s].push(byte);
                    if byte == b'\n' || current[s].len() == MAX_LOG_LINE - 1 {
                        if byte != b'\n' { current[s].push(b'\n'); }
                        source_lines[s].push(core::mem::take(&mut current[s]));
                        written[s] += 1;
                    }
                }
                if i % read_every == 0 {
                    let (bytes, l) = read_all(&mut log);
                    read.extend(bytes);
                    lost += l;
                }
            }
            let (bytes, l) = read_all(&mut log);
            read.extend(bytes);
            lost += l;
            prop_assert!(read.is_empty() || read.ends_with(b"\n"));
            let lines: Vec<&[u8]> = read.split_inclusive(|b| *b == b'\n').collect();
            prop_assert_eq!(lines.len() as u32 + lost, (written[0] + written[1]) as u32);
            // Each source's lines read appear in its order, none invented.
            for (s, mark) in [(0, b'K'), (1, b'U')] {
                let mine: Vec<&[u8]> = lines.iter().copied().filter(|l| l.first() == Some(&mark)).collect();
                let mut expected = source_lines[s].iter().filter(|l| l.first() == Some(&mark));
                for line in mine {
                    prop_assert!(expected.any(|e| e.as_slice() == line));
                }
            }
        }
    }
}
