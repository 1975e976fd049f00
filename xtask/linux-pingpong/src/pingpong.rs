//! The ping-pongs themselves, measured the way the guest bench measures
//! itself: RDTSC right before and right after each
//! round trip, [`ipc_bench::WARM_UP`] unmeasured rounds first, the same
//! nearest-rank percentiles of the rest.
//!
//! Each ping-pong runs between this process and a `fork`ed partner, both
//! pinned to one CPU (the first this process may use), like the guest's
//! single CPU: a round trip is two context switches, as in the guest.
//!
//! Rows (TSC ticks, `descriptors` 0):
//! - `pipe-1`, `pipe-64`, `pipe-4000`: one pipe each way; a pipe cannot
//!   carry an empty message, so its smallest is one byte (compared with
//!   the guest's 0);
//! - `socketpair-0`, `socketpair-64`, `socketpair-4000`: an `AF_UNIX` `SOCK_SEQPACKET`
//!   socketpair, which keeps message boundaries like a door message and
//!   carries empty messages;
//! - `move-1mib-pipe`, `move-1mib-socketpair`: 1 MiB written in 4,096-byte
//!   pieces through a pipe or an `AF_UNIX` `SOCK_STREAM` socketpair, timed
//!   until the partner, which reads it all, answers one byte (the guest's
//!   `move-1mib-pipe` and `move-1mib-socket`); [`MOVE_SAMPLES`] measured
//!   after [`MOVE_WARM_UP`];
//! - `futex-0`: a counter in a shared page; each side stores its turn,
//!   FUTEX_WAKEs the other and FUTEX_WAITs for its own next turn;
//! - `syscall-getppid`: one system call, to compare with `trap-null`.
//!
//! The forked partner only makes system calls (no allocation, no lock, no
//! panic) and leaves with `_exit`, as a child of a multithreaded parent must.

use crate::Measured;
use anyhow::{Context, Result, bail};
use ipc_bench::Percentiles as Stats;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many rounds a ping-pong runs: the warm-up, the measured ones, and
/// one unmeasured last round, which absorbs the partner's exit (on one CPU
/// the partner exits right after its last answer, before we run again).
#[derive(Clone, Copy, Debug)]
struct Rounds {
    warm_up: usize,
    measured: usize,
}

impl Rounds {
    fn total(self) -> usize {
        self.warm_up + self.measured + 1
    }
}

/// Every row, in the order the module docs list them.
pub fn baselines(iterations: usize, warm_up: usize) -> Result<Vec<Measured>> {
    let rounds = Rounds {
        warm_up,
        measured: iterations,
    };
    let _pinned = Pinned::to_one_cpu().context("pinning the ping-pongs to one CPU")?;
    let row = |name: &str, payload_bytes: usize, stats: Stats| Measured {
        name: name.to_owned(),
        payload_bytes: payload_bytes as u32,
        stats,
    };
    let mut rows = Vec::new();
    for payload in [1, 64, 4000] {
        let stats = pipe_ping_pong(rounds, payload)
            .with_context(|| format!("pipe ping-pong, {payload} bytes"))?;
        rows.push(row(&format!("pipe-{payload}"), payload, stats));
    }
    for payload in [0, 64, 4000] {
        let stats = socket_ping_pong(rounds, payload)
            .with_context(|| format!("socketpair ping-pong, {payload} bytes"))?;
        rows.push(row(&format!("socketpair-{payload}"), payload, stats));
    }
    let moves = Rounds {
        warm_up: MOVE_WARM_UP,
        measured: MOVE_SAMPLES,
    };
    rows.push(row(
        "move-1mib-pipe",
        MIB,
        pipe_move(moves).context("1 MiB through a pipe")?,
    ));
    rows.push(row(
        "move-1mib-socketpair",
        MIB,
        socketpair_move(moves).context("1 MiB through a socketpair")?,
    ));
    rows.push(row(
        "futex-0",
        0,
        futex_ping_pong(rounds).context("futex ping-pong")?,
    ));
    rows.push(row(
        "syscall-getppid",
        0,
        getppid_rounds(rounds).context("getppid")?,
    ));
    Ok(rows)
}

/// Nearest-rank percentiles, as the guest computes them.
fn percentiles(mut samples: Vec<u64>) -> Stats {
    samples.sort_unstable();
    Stats::of_sorted(&samples)
}

/// The time-stamp counter.
fn tsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter (allowed in user
    // mode on Linux).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Runs `once` for every round, keeping the measured rounds' results.
fn time_rounds(rounds: Rounds, mut once: impl FnMut() -> io::Result<u64>) -> io::Result<Stats> {
    for _ in 0..rounds.warm_up {
        once()?;
    }
    let mut samples = Vec::with_capacity(rounds.measured);
    for _ in 0..rounds.measured {
        samples.push(once()?);
    }
    once()?;
    Ok(percentiles(samples))
}

/// A `-1` result as the `errno` error.
fn check(result: isize) -> io::Result<usize> {
    usize::try_from(result).map_err(|_| io::Error::last_os_error())
}

/// The calling thread (and the children it forks) pinned to one CPU; the
/// previous CPU set comes back when this is dropped.
struct Pinned {
    previous: libc::cpu_set_t,
}

impl Pinned {
    fn to_one_cpu() -> io::Result<Self> {
        // SAFETY: cpu_set_t is a plain bit array; all zeros is the empty set.
        let mut previous: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = size_of::<libc::cpu_set_t>();
        // SAFETY: pid 0 is the calling thread; `previous` is a writable set of `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut previous) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let cpu = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE, inside the set.
            .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &previous) })
            .ok_or_else(|| io::Error::other("this process may run on no CPU"))?;
        // SAFETY: as above, the empty set.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE, inside the set.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: pid 0 is the calling thread; `one` is a valid set of `size` bytes.
        if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pinned { previous })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: as in `to_one_cpu`; failing leaves the thread pinned,
        // which only slows what xtask does next.
        unsafe {
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.previous);
        }
    }
}

/// A forked partner process; killed and reaped if dropped before [`Partner::finish`].
struct Partner {
    pid: libc::pid_t,
    reaped: bool,
}

impl Partner {
    /// Forks; the child runs `body` and exits with 0 if it returns true, 1
    /// otherwise. `body` must only make system calls (see the module docs).
    fn fork(body: impl FnOnce() -> bool) -> io::Result<Self> {
        // SAFETY: the child runs only `body`, which makes system calls on
        // memory that existed before the fork, then `_exit`s without
        // running destructors or touching locks another thread may hold.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                let code = if body() { 0 } else { 1 };
                // SAFETY: ends the child at once, as a forked child must.
                unsafe { libc::_exit(code) }
            }
            pid => Ok(Partner { pid, reaped: false }),
        }
    }

    /// Waits for the partner; an error unless it exited with 0.
    fn finish(mut self) -> Result<()> {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is writable.
        let waited = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        self.reaped = true;
        if waited != self.pid {
            return Err(io::Error::last_os_error()).context("waiting for the partner process");
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            bail!("the partner process failed (wait status {status:#x})");
        }
        Ok(())
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        if !self.reaped {
            let mut status = 0;
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}

/// A file descriptor closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor; closing it twice never happens.
        unsafe { libc::close(self.0) };
    }
}

fn pipe() -> io::Result<(Fd, Fd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((Fd(fds[0]), Fd(fds[1])))
}

/// How a ping-pong moves its messages.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// read(2) and write(2) on pipes.
    Pipe,
    /// recv(2) and send(2) on a socket, without SIGPIPE.
    Socket,
}

impl Transport {
    /// Sends the first `length` bytes of `buffer` as one message.
    fn send(self, fd: libc::c_int, buffer: &[u8], length: usize) -> io::Result<()> {
        let pointer = buffer.as_ptr().cast();
        // SAFETY: `length` bytes of `buffer` are readable (checked by the callers).
        let sent = check(unsafe {
            match self {
                Transport::Pipe => libc::write(fd, pointer, length),
                Transport::Socket => libc::send(fd, pointer, length, libc::MSG_NOSIGNAL),
            }
        })?;
        if sent != length {
            // Not io::Error::other: the forked partner must not allocate.
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(())
    }

    /// Receives one message into `buffer`; it must be `length` bytes long.
    fn receive(self, fd: libc::c_int, buffer: &mut [u8], length: usize) -> io::Result<()> {
        let pointer = buffer.as_mut_ptr().cast();
        // SAFETY: all of `buffer` is writable. The socket is offered the
        // whole buffer: recv(2) of 0 bytes would return at once.
        let received = check(unsafe {
            match self {
                Transport::Pipe => libc::read(fd, pointer, length),
                Transport::Socket => libc::recv(fd, pointer, buffer.len(), 0),
            }
        })?;
        if received != length {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(())
    }
}

/// The largest ping-pong message, and the buffers' size.
const BUFFER: usize = 4096;

/// A ping-pong of `payload`-byte messages: this process sends on
/// `parent_send` and receives on `parent_receive`; the partner receives
/// on `child_receive` and answers on `child_send`.
fn fd_ping_pong(
    rounds: Rounds,
    payload: usize,
    transport: Transport,
    parent: (Fd, Fd),
    child: (Fd, Fd),
) -> Result<Stats> {
    let mut buffer = [0x5au8; BUFFER];
    let length = payload.min(BUFFER);
    let (child_receive, child_send) = (child.0.0, child.1.0);
    let partner = Partner::fork(move || {
        let mut buffer = [0u8; BUFFER];
        for _ in 0..rounds.total() {
            if transport
                .receive(child_receive, &mut buffer, length)
                .is_err()
                || transport.send(child_send, &buffer, length).is_err()
            {
                return false;
            }
        }
        true
    })?;
    drop(child);
    let (parent_send, parent_receive) = (parent.0.0, parent.1.0);
    let stats = time_rounds(rounds, || {
        let start = tsc();
        transport.send(parent_send, &buffer, length)?;
        transport.receive(parent_receive, &mut buffer, length)?;
        let end = tsc();
        Ok(end - start)
    })?;
    drop(parent);
    partner.finish()?;
    Ok(stats)
}

fn pipe_ping_pong(rounds: Rounds, payload: usize) -> Result<Stats> {
    let (to_child_read, to_child_write) = pipe()?;
    let (to_parent_read, to_parent_write) = pipe()?;
    fd_ping_pong(
        rounds,
        payload,
        Transport::Pipe,
        (to_child_write, to_parent_read),
        (to_child_read, to_parent_write),
    )
}

fn socket_ping_pong(rounds: Rounds, payload: usize) -> Result<Stats> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error()).context("socketpair");
    }
    let (ours, theirs) = (fds[0], fds[1]);
    // SAFETY: duplicating descriptors we own, so that each side has a
    // send and a receive descriptor to close independently.
    let (ours_again, theirs_again) = unsafe { (libc::dup(ours), libc::dup(theirs)) };
    let parent = (Fd(ours), Fd(ours_again));
    let child = (Fd(theirs), Fd(theirs_again));
    if parent.1.0 < 0 || child.1.0 < 0 {
        return Err(io::Error::last_os_error()).context("dup");
    }
    fd_ping_pong(rounds, payload, Transport::Socket, parent, child)
}

/// Bytes of one stream sample.
const MIB: usize = 1 << 20;
/// Unmeasured and measured samples of the stream rows (as the guest's).
const MOVE_WARM_UP: usize = 2;
const MOVE_SAMPLES: usize = 9;

/// Writes all of `bytes` to `fd` (a blocking stream may take fewer).
fn write_all(fd: libc::c_int, bytes: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        let rest = &bytes[done..];
        // SAFETY: `rest` is readable for its length.
        done += check(unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) })?;
    }
    Ok(())
}

/// 1 MiB per round from this process to a partner that reads it all and
/// answers one byte: the parent writes on `parent.0` and reads the answer
/// on `parent.1`; the partner reads `child.0` and answers on `child.1`.
fn fd_move(rounds: Rounds, parent: (Fd, Fd), child: (Fd, Fd)) -> Result<Stats> {
    let (child_receive, child_send) = (child.0.0, child.1.0);
    let partner = Partner::fork(move || {
        let mut buffer = [0u8; BUFFER];
        for _ in 0..rounds.total() {
            let mut got = 0;
            while got < MIB {
                // SAFETY: `buffer` is writable for its length.
                match check(unsafe {
                    libc::read(
                        child_receive,
                        buffer.as_mut_ptr().cast(),
                        BUFFER.min(MIB - got),
                    )
                }) {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => got += n,
                }
            }
            if write_all(child_send, b"k").is_err() {
                return false;
            }
        }
        true
    })?;
    drop(child);
    let (parent_send, parent_receive) = (parent.0.0, parent.1.0);
    let source: Vec<u8> = (0..MIB).map(|i| (i * 7 + 1) as u8).collect();
    let stats = time_rounds(rounds, || {
        let start = tsc();
        for chunk in source.chunks(BUFFER) {
            write_all(parent_send, chunk)?;
        }
        let mut answer = [0u8; 1];
        // SAFETY: `answer` is writable for its length.
        if check(unsafe { libc::read(parent_receive, answer.as_mut_ptr().cast(), 1) })? != 1 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(tsc() - start)
    })?;
    drop(parent);
    partner.finish()?;
    Ok(stats)
}

fn pipe_move(rounds: Rounds) -> Result<Stats> {
    let (to_child_read, to_child_write) = pipe()?;
    let (to_parent_read, to_parent_write) = pipe()?;
    fd_move(
        rounds,
        (to_child_write, to_parent_read),
        (to_child_read, to_parent_write),
    )
}

fn socketpair_move(rounds: Rounds) -> Result<Stats> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error()).context("socketpair");
    }
    let (ours, theirs) = (fds[0], fds[1]);
    // SAFETY: duplicating descriptors we own (one to send, one to receive).
    let (ours_again, theirs_again) = unsafe { (libc::dup(ours), libc::dup(theirs)) };
    let parent = (Fd(ours), Fd(ours_again));
    let child = (Fd(theirs), Fd(theirs_again));
    if parent.1.0 < 0 || child.1.0 < 0 {
        return Err(io::Error::last_os_error()).context("dup");
    }
    fd_move(rounds, parent, child)
}

/// One shared, zeroed page, unmapped on drop.
struct SharedPage(*mut libc::c_void);

impl SharedPage {
    fn new() -> io::Result<Self> {
        // SAFETY: a fresh anonymous shared mapping; no existing memory is affected.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedPage(page))
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: the page is mapped, zeroed, aligned and lives as long as
        // `self`; AtomicU32 has the layout of a u32.
        unsafe { &*self.0.cast::<AtomicU32>() }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer referenced.
        unsafe { libc::munmap(self.0, 4096) };
    }
}

/// FUTEX_WAIT (shared, not private: two processes) while `word` is `value`.
fn futex_wait(word: &AtomicU32, value: u32) {
    // SAFETY: `word` is a valid, aligned u32; no timeout. EAGAIN (the word
    // changed) and EINTR need no handling: the callers check and retry.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            value,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// FUTEX_WAKE of one waiter on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// Waits until `word` holds `wanted`.
fn futex_await(word: &AtomicU32, wanted: u32) {
    loop {
        let now = word.load(Ordering::Acquire);
        if now == wanted {
            return;
        }
        futex_wait(word, now);
    }
}

/// Round `k` (from 1): this process stores `2k - 1` and wakes the
/// partner, which waits for it, stores `2k` and wakes this process back.
fn futex_ping_pong(rounds: Rounds) -> Result<Stats> {
    let page = SharedPage::new().context("mapping the shared page")?;
    let word = page.word();
    let total = u32::try_from(rounds.total()).context("too many rounds")?;
    let partner = Partner::fork(|| {
        for round in 1..=total {
            futex_await(word, 2 * round - 1);
            word.store(2 * round, Ordering::Release);
            futex_wake(word);
        }
        true
    })?;
    let mut round = 0u32;
    let stats = time_rounds(rounds, || {
        round += 1;
        let start = tsc();
        word.store(2 * round - 1, Ordering::Release);
        futex_wake(word);
        futex_await(word, 2 * round);
        let end = tsc();
        Ok(end - start)
    })?;
    partner.finish()?;
    Ok(stats)
}

fn getppid_rounds(rounds: Rounds) -> io::Result<Stats> {
    time_rounds(rounds, || {
        let start = tsc();
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        let end = tsc();
        std::hint::black_box(parent);
        Ok(end - start)
    })
}
