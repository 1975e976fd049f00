//! The pairs of a pty server and its door (ABI.md §7a.7): what the
//! standalone `pty` program runs, and what the console server runs with
//! COM1 as the master of its first pair.
//!
//! A pair is two pipes (procman's, D38): the slave's stdin is the read end
//! of the input pipe, into which [`Pair::type_bytes`] writes cooked input;
//! the slave's stdout and stderr are the write end of the output pipe,
//! which the pair's pump thread drains through output processing to the
//! master: a function in this process (the console's COM1) or a bounded
//! queue PTY_MASTER_READ empties. The door's threads serve every pair:
//! a reference's cookie (set by PTY_OPEN's reply, never by a caller) names
//! its pair.
//!
//! It must never hold a pair's lock across a blocking pipe write (the
//! slave may be waiting for its output to drain), never drop output a
//! slave wrote unless ^C flushed it, and never trust a number a caller
//! sends for anything but the request's own fields.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::Rights;
use abi::procman::ProcmanError;
use abi::pty::{
    DEFAULT_WINDOW, ForegroundGroup, MAX_MASTER_OUTPUT, MAX_MASTER_WRITE, MAX_PAIRS, MODE_ALL,
    MODE_CANONICAL, MODE_DEFAULT, MODE_ECHO, MasterReadReply, PtyCounters, PtyMode, PtyOpenReply,
    PtyOpenRequest, WindowSize,
};
use userlib::CallError;
use userlib::interface::{Call, Refusal};
use userlib::pipe::{PipeReader, PipeWriter, pipe};
use userlib::{Event, OwnedDescriptor, println};

use crate::current_line::CurrentLine;
use crate::discipline::{Control, Discipline, Effects, process_output};
use crate::{PtyError, PtyServer};

/// Spinning on a pair's lock gives the CPU to the holder.
#[derive(Debug)]
pub struct YieldWhileLocked;

impl spin::relax::RelaxStrategy for YieldWhileLocked {
    fn relax() {
        let _ = userlib::kernel::yield_now();
    }
}

/// The lock every pair's state and the service's table use.
pub type Lock<T> = spin::mutex::Mutex<T, YieldWhileLocked>;

/// A master in this process: it gets the terminal's output, processed,
/// under the pair's lock (so echo and the slave's output keep their order).
pub type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The security type of a pty door: "pty", the manifest's sixth type
/// (after "files", the RAM file server's).
pub const PTY_SECURITY_TYPE: u32 = 6;

/// How many bytes the pump takes from the slave's output at once.
const PUMP_CHUNK: usize = 512;

/// What acting on ^C or ^Z did to the foreground group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// No foreground group (0), or a key that signals nothing: nobody was
    /// asked.
    Nobody,
    /// procman delivered the signal to every live member of the group.
    Signalled,
    /// procman refused the group SIGNAL whole (`PM_SIGNAL_DENIED`: a
    /// member out of this server's reach; `PM_NO_SUCH_GROUP`: no live
    /// member), so it reached nobody.
    Refused,
}

/// The one place ^C and ^Z reach the foreground job (D87): procman's
/// SIGNAL with the GROUP flag to the terminal's foreground process group.
/// procman decides who may signal whom (D70): a server may signal its
/// descendants and its own session, so the console, which started the
/// shell, reaches the shell's jobs, and a standalone pty server reaches
/// the groups of its own session; a group with one member out of reach is
/// refused whole.
pub fn signal_foreground_job(control: Control, group: u32) -> JobOutcome {
    let Some(signal) = control.signal() else {
        return JobOutcome::Nobody;
    };
    if group == 0 {
        return JobOutcome::Nobody;
    }
    match userlib::signal::kill_group(group, signal) {
        Ok(()) => JobOutcome::Signalled,
        Err(_) => JobOutcome::Refused,
    }
}

/// A pair's state, behind its lock.
struct PairState {
    discipline: Discipline,
    window: WindowSize,
    /// The foreground process group (0: none).
    foreground: u32,
    counters: PtyCounters,
    /// Output for PTY_MASTER_READ (door masters only).
    queue: VecDeque<u8>,
    /// The slave's output ended (every write end gone).
    output_ended: bool,
    /// PTY_CLOSE was answered: the pump ends and the output is dropped.
    closed: bool,
    /// The output pipe's read position up to which ^C flushed: a chunk the
    /// pump read that ends at or before it is dropped.
    flushed_through: u32,
    /// The last output byte was a `\n` (or nothing was written).
    at_line_start: bool,
    /// The pump waits for room in the queue.
    pump_waiting: bool,
    /// The terminal's current line: output arriving while a line is
    /// edited goes above it (D94).
    line: CurrentLine,
}

/// One master/slave pair.
pub struct Pair {
    number: u32,
    cookie: u64,
    state: Lock<PairState>,
    /// The input pipe's write end; gone after ^D or PTY_CLOSE.
    input: Lock<Option<PipeWriter>>,
    /// The output pipe's read end (the pump's; ^C reads it too).
    output: PipeReader,
    /// Held while ^C acts on the job; PTY_SET_FOREGROUND takes it.
    job: Lock<()>,
    /// Signalled when output waits in the queue (or the output ended).
    ready: Event,
    /// Signalled when PTY_MASTER_READ made room for the pump.
    room: Event,
    sink: Option<Sink>,
    /// The slave's ends when the server itself is the slave's holder (the
    /// console, which names them in the session's SPAWN).
    own_slave_ends: Lock<Option<(PipeReader, PipeWriter)>>,
}

impl core::fmt::Debug for Pair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pair")
            .field("number", &self.number)
            .finish()
    }
}

/// Whether ring position `end` is at or before `mark` (free-running u32s).
fn at_or_before(end: u32, mark: u32) -> bool {
    end.wrapping_sub(mark) as i32 <= 0
}

impl Pair {
    /// The pair's number N (`/dev/pty/N`).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Hands `bytes` (already processed) to the master. With the lock held.
    fn deliver(&self, state: &mut PairState, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(last) = bytes.last() {
            state.at_line_start = *last == b'\n';
        }
        match &self.sink {
            Some(sink) => sink(bytes),
            None => {
                let was_empty = state.queue.is_empty();
                state.queue.extend(bytes);
                if was_empty {
                    let _ = self.ready.signal();
                }
            }
        }
    }

    fn echo(&self, state: &mut PairState, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + 8);
        process_output(state.discipline.mode(), bytes, &mut out);
        state.line.echoed(&out);
        self.deliver(state, &out);
    }

    /// Writes `bytes` to the slave's input, without the pair's lock (the
    /// slave may be blocked on its output); dropped once the input ended.
    fn to_slave(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let input = self.input.lock();
        if let Some(writer) = input.as_ref()
            && writer.write_all(bytes).is_ok()
        {
            drop(input);
            let mut state = self.state.lock();
            state.counters.input_bytes =
                state.counters.input_bytes.wrapping_add(bytes.len() as u32);
        }
    }

    fn apply(&self, effects: &mut Effects) {
        if !effects.echo.is_empty() {
            let mut state = self.state.lock();
            self.echo(&mut state, &effects.echo);
        }
        self.to_slave(&effects.to_slave);
        effects.clear();
    }

    /// Bytes typed at the terminal: through the line discipline, in order,
    /// each ^C, ^Z or ^D acted on before the next byte.
    pub fn type_bytes(&self, bytes: &[u8]) {
        let mut effects = Effects::default();
        for &byte in bytes {
            let control = self.state.lock().discipline.feed(byte, &mut effects);
            if let Some(control) = control {
                self.apply(&mut effects);
                self.act(control);
            }
        }
        self.apply(&mut effects);
    }

    fn act(&self, control: Control) {
        if control == Control::EndOfFile {
            if let Some(writer) = self.input.lock().take() {
                // The slave reads end of file after what it was given.
                let _ = writer.close();
            }
            return;
        }
        let _job = self.job.lock();
        let job = {
            let mut state = self.state.lock();
            match control {
                Control::Interrupt => state.counters.interrupts += 1,
                _ => state.counters.suspends += 1,
            }
            state.foreground
        };
        let outcome = signal_foreground_job(control, job);
        let mut state = self.state.lock();
        match outcome {
            JobOutcome::Signalled => state.counters.signalled += 1,
            JobOutcome::Refused => state.counters.signal_refused += 1,
            JobOutcome::Nobody => {}
        }
        if outcome == JobOutcome::Signalled {
            // What the interrupted or stopped job wrote and no one read
            // yet goes, as POSIX terminals flush on INTR and SUSP (D74):
            // the shell cannot write meanwhile (it clears its job only
            // after this), and the job's line after ^Z is the shell's.
            self.flush(&mut state);
        }
        if state.discipline.mode() & MODE_ECHO != 0 {
            let mut echo = Vec::new();
            if !state.at_line_start {
                echo.push(b'\n');
            }
            echo.extend_from_slice(control.echo());
            self.echo(&mut state, &echo);
        }
    }

    fn flush(&self, state: &mut PairState) {
        let mut chunk = [0u8; PUMP_CHUNK];
        if let Ok(Some((_, position))) = self.output.try_read(&mut []) {
            state.flushed_through = position;
        }
        while let Ok(Some((_, position))) = self.output.try_read(&mut chunk) {
            state.flushed_through = position;
        }
        state.queue.clear();
    }

    /// The pump: the slave's output to the master until every write end is
    /// gone.
    fn pump(self: Arc<Self>) {
        let mut chunk = [0u8; PUMP_CHUNK];
        let mut out = Vec::with_capacity(2 * PUMP_CHUNK);
        loop {
            if self.sink.is_none() {
                // Room for a processed chunk first: output waits in the
                // pipe, never dropped.
                loop {
                    let mut state = self.state.lock();
                    if state.closed || state.queue.len() + 2 * PUMP_CHUNK <= MAX_MASTER_OUTPUT {
                        break;
                    }
                    state.pump_waiting = true;
                    drop(state);
                    if self.room.wait().is_err() {
                        return;
                    }
                }
            }
            // The master's hang-up (PTY_CLOSE) ends the pump too: the
            // pair then goes, and with it the output pipe's read end, so
            // the slave's later writes fail with PM_BROKEN_PIPE.
            let read = self
                .output
                .read_positioned_or_stop(&mut chunk, || self.state.lock().closed);
            let (count, end) = match read {
                Ok(Some((0, _))) | Err(_) => {
                    self.state.lock().output_ended = true;
                    let _ = self.ready.signal();
                    return;
                }
                Ok(None) => return,
                Ok(Some(read)) => read,
            };
            let mut state = self.state.lock();
            state.counters.output_bytes = state.counters.output_bytes.wrapping_add(count as u32);
            if state.closed || at_or_before(end, state.flushed_through) {
                continue;
            }
            out.clear();
            let mode = state.discipline.mode();
            process_output(mode, &chunk[..count], &mut out);
            // What the person is typing, as echoed (nothing when echo or
            // canonical mode is off): whole lines go above it (D94).
            let mut editing = Vec::new();
            if mode & MODE_ECHO != 0 && mode & MODE_CANONICAL != 0 {
                process_output(mode, state.discipline.pending(), &mut editing);
            }
            let mut shown = Vec::with_capacity(out.len() + editing.len());
            state.line.output(&out, &editing, &mut shown);
            self.deliver(&mut state, &shown);
        }
    }
}

/// The pairs of one server.
struct Slots {
    pairs: [Option<Arc<Pair>>; MAX_PAIRS],
    /// Bumped at each PTY_OPEN: a closed pair's stale reference never
    /// reaches the pair that reuses its number.
    generation: u32,
}

/// A pty server: its pairs and its door's logic.
pub struct Service {
    slots: Lock<Slots>,
    /// The master of the next pair opened, when it is in this process.
    next_sink: Lock<Option<Sink>>,
    own_pid: u32,
}

impl core::fmt::Debug for Service {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Service")
            .field("own_pid", &self.own_pid)
            .finish()
    }
}

/// The cookie of pair `number` opened in `generation`: never 0 (0 is a
/// manager reference).
fn cookie_of(number: u32, generation: u32) -> u64 {
    (u64::from(generation) << 8) | u64::from(number + 1)
}

impl Service {
    /// A server with no pairs.
    pub fn new() -> Arc<Self> {
        Arc::new(Service {
            slots: Lock::new(Slots {
                pairs: Default::default(),
                generation: 0,
            }),
            next_sink: Lock::new(None),
            own_pid: userlib::kernel::process_id().unwrap_or(0) as u32,
        })
    }

    /// The next pair opened gets `sink` as its master (the console's COM1)
    /// instead of the PTY_MASTER_READ queue.
    pub fn master_next_pair(&self, sink: Sink) {
        *self.next_sink.lock() = Some(sink);
    }

    /// The slave's ends of pair `number` when this process was named its
    /// slave: the caller names them in a SPAWN's streams, then drops them.
    pub fn take_own_slave_ends(&self, number: u32) -> Option<(PipeReader, PipeWriter)> {
        let pair = self.slots.lock().pairs.get(number as usize)?.clone()?;
        pair.own_slave_ends.lock().take()
    }

    /// The pair a cookie names; a manager reference (0) is `BadRequest`, a
    /// closed pair's `Closed`.
    fn pair(&self, cookie: u64) -> Result<Arc<Pair>, PtyError> {
        if cookie == 0 {
            return Err(PtyError::BadRequest);
        }
        let number = (cookie & 0xff).wrapping_sub(1) as usize;
        self.slots
            .lock()
            .pairs
            .get(number)
            .and_then(Option::as_ref)
            .filter(|pair| pair.cookie == cookie)
            .cloned()
            .ok_or(PtyError::Closed)
    }

    /// Pair `number` (the console's way to its own terminal).
    pub fn pair_by_number(&self, number: u32) -> Option<Arc<Pair>> {
        self.slots.lock().pairs.get(number as usize)?.clone()
    }

    fn open_pair(&self, slave: u32) -> Result<Arc<Pair>, PtyError> {
        let (number, generation) = {
            let mut slots = self.slots.lock();
            let number = slots
                .pairs
                .iter()
                .position(Option::is_none)
                .ok_or(PtyError::NoFreePair)?;
            slots.generation = slots.generation.wrapping_add(1);
            (number as u32, slots.generation)
        };
        let refused = |what: &str, error: &dyn core::fmt::Debug| {
            println!("pty: pair {number}: {what}: {error:?}");
            PtyError::NoResources
        };
        let (input_reader, input_writer) = pipe().map_err(|e| refused("input pipe", &e))?;
        let (output_reader, output_writer) = pipe().map_err(|e| refused("output pipe", &e))?;
        let own_slave_ends = if slave == self.own_pid {
            Some((input_reader, output_writer))
        } else {
            input_reader
                .grant(slave)
                .map_err(|e| refused("grant", &e))?;
            output_writer
                .grant(slave)
                .map_err(|e| refused("grant", &e))?;
            // Only the slave's ends count from now on: its end of file and
            // broken pipe follow the slave, not this server.
            drop((input_reader, output_writer));
            None
        };
        let ready = Event::create().map_err(|e| refused("event", &e))?;
        let room = Event::create().map_err(|e| refused("event", &e))?;
        let flushed_through = match output_reader.try_read(&mut []) {
            Ok(Some((_, position))) => position,
            _ => 0,
        };
        let pair = Arc::new(Pair {
            number,
            cookie: cookie_of(number, generation),
            state: Lock::new(PairState {
                discipline: Discipline::new(MODE_DEFAULT),
                window: DEFAULT_WINDOW,
                foreground: 0,
                counters: PtyCounters::default(),
                queue: VecDeque::new(),
                output_ended: false,
                closed: false,
                // The pump's first chunk ends past it.
                flushed_through,
                at_line_start: true,
                pump_waiting: false,
                line: CurrentLine::new(),
            }),
            input: Lock::new(Some(input_writer)),
            output: output_reader,
            job: Lock::new(()),
            ready,
            room,
            sink: self.next_sink.lock().take(),
            own_slave_ends: Lock::new(own_slave_ends),
        });
        let pump = pair.clone();
        userlib::spawn_thread(move || pump.pump(), userlib::thread::DEFAULT_STACK_SIZE)
            .map_err(|e| refused("pump thread", &e))?;
        let mut slots = self.slots.lock();
        match slots.pairs.get_mut(number as usize) {
            Some(slot @ None) => *slot = Some(pair.clone()),
            // Another PTY_OPEN took the number meanwhile.
            _ => return Err(PtyError::NoFreePair),
        }
        Ok(pair)
    }

    fn close_pair(&self, pair: &Arc<Pair>) {
        if let Some(writer) = pair.input.lock().take() {
            let _ = writer.close();
        }
        {
            let mut state = pair.state.lock();
            state.closed = true;
            state.queue.clear();
            if core::mem::take(&mut state.pump_waiting) {
                let _ = pair.room.signal();
            }
        }
        // The pump looks at `closed` again and ends.
        pair.output.wake_reader();
        drop(pair.own_slave_ends.lock().take());
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.pairs.get_mut(pair.number as usize)
            && slot.as_ref().is_some_and(|p| p.cookie == pair.cookie)
        {
            *slot = None;
        }
    }
}

/// One door thread's server: every pair's calls, by cookie.
#[derive(Debug)]
pub struct Door {
    /// The server whose pairs this door serves.
    pub service: Arc<Service>,
}

impl PtyServer for Door {
    fn open(
        &mut self,
        call: &mut Call<'_>,
        header: PtyOpenRequest,
    ) -> Result<PtyOpenReply, Refusal<PtyError>> {
        if call.cookie() != 0 || header.reserved != 0 || header.slave == 0 {
            return Err(PtyError::BadRequest.into());
        }
        let pair = self.service.open_pair(header.slave)?;
        let reply = PtyOpenReply {
            pair: pair.number,
            input_pipe: pair.input.lock().as_ref().map_or(0, PipeWriter::pipe),
            output_pipe: pair.output.pipe(),
            reserved: 0,
        };
        if call
            .push_copy(
                pair.ready.descriptor().descriptor(),
                Rights(Rights::WAIT.0 | Rights::TRANSFER.0),
            )
            .is_err()
        {
            self.service.close_pair(&pair);
            return Err(PtyError::ReplyDoesNotFit.into());
        }
        call.set_cookie(pair.cookie);
        Ok(reply)
    }

    fn master_write(&mut self, call: &mut Call<'_>, bytes: &[u8]) -> Result<(), Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        if bytes.len() > MAX_MASTER_WRITE {
            return Err(PtyError::TooLong.into());
        }
        if pair.state.lock().closed {
            return Err(PtyError::Closed.into());
        }
        pair.type_bytes(bytes);
        Ok(())
    }

    fn master_read(&mut self, call: &mut Call<'_>) -> Result<MasterReadReply, Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        let mut state = pair.state.lock();
        let room = call.room().saturating_sub(size_of::<MasterReadReply>());
        let count = room.min(state.queue.len());
        let bytes: Vec<u8> = state.queue.drain(..count).collect();
        if call.push_bytes(&bytes).is_err() {
            // Back in front, in order: nothing is lost to a small buffer.
            for byte in bytes.into_iter().rev() {
                state.queue.push_front(byte);
            }
            return Err(PtyError::ReplyDoesNotFit.into());
        }
        if count > 0 && core::mem::take(&mut state.pump_waiting) {
            let _ = pair.room.signal();
        }
        Ok(MasterReadReply {
            ended: u32::from(state.output_ended && state.queue.is_empty()),
            reserved: 0,
        })
    }

    fn set_mode(&mut self, call: &mut Call<'_>, header: PtyMode) -> Result<(), Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        if header.reserved != 0 {
            return Err(PtyError::BadRequest.into());
        }
        if header.flags & !MODE_ALL != 0 {
            return Err(PtyError::BadMode.into());
        }
        let mut effects = Effects::default();
        pair.state
            .lock()
            .discipline
            .set_mode(header.flags, &mut effects);
        pair.apply(&mut effects);
        Ok(())
    }

    fn get_mode(&mut self, call: &mut Call<'_>) -> Result<PtyMode, Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        Ok(PtyMode::new(pair.state.lock().discipline.mode()))
    }

    fn set_window(
        &mut self,
        call: &mut Call<'_>,
        header: WindowSize,
    ) -> Result<(), Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        if header.reserved != 0 {
            return Err(PtyError::BadRequest.into());
        }
        if header.rows == 0 || header.columns == 0 {
            return Err(PtyError::BadWindow.into());
        }
        pair.state.lock().window = header;
        Ok(())
    }

    fn get_window(&mut self, call: &mut Call<'_>) -> Result<WindowSize, Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        Ok(pair.state.lock().window)
    }

    fn set_foreground(
        &mut self,
        call: &mut Call<'_>,
        header: ForegroundGroup,
    ) -> Result<(), Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        if header.reserved != 0 {
            return Err(PtyError::BadRequest.into());
        }
        // D86: a group with no live member is no group (SIGNAL 0 checks
        // without delivering). One out of this server's reach is taken:
        // procman decides at each ^C, and the refusal is counted then.
        if header.group != 0
            && let Err(CallError::Server(errno)) = userlib::signal::kill_group(header.group, 0)
            && errno == ProcmanError::NoSuchGroup as u32
        {
            return Err(PtyError::BadForeground.into());
        }
        // After any ^C being acted on (the job lock), so what the shell
        // writes once its job is cleared is never flushed with the job's.
        let _job = pair.job.lock();
        pair.state.lock().foreground = header.group;
        Ok(())
    }

    fn get_foreground(
        &mut self,
        call: &mut Call<'_>,
    ) -> Result<ForegroundGroup, Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        Ok(ForegroundGroup::new(pair.state.lock().foreground))
    }

    fn close(&mut self, call: &mut Call<'_>) -> Result<(), Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        self.service.close_pair(&pair);
        Ok(())
    }

    fn counters(&mut self, call: &mut Call<'_>) -> Result<PtyCounters, Refusal<PtyError>> {
        let pair = self.service.pair(call.cookie())?;
        Ok(pair.state.lock().counters)
    }
}

/// Starts `threads` threads serving `door` (the owner reference) for
/// `service`; the first error starting one.
pub fn serve(
    service: &Arc<Service>,
    door: OwnedDescriptor,
    threads: usize,
) -> Result<(), abi::Error> {
    let door = Arc::new(door);
    for _ in 0..threads {
        let (door, service) = (door.clone(), service.clone());
        userlib::spawn_thread(
            move || {
                let error = Door { service }.serve(&door);
                println!("pty: stopped serving: {error}");
            },
            userlib::thread::DEFAULT_STACK_SIZE,
        )?;
    }
    Ok(())
}
