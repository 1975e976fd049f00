//! The serial console server: it drives COM1 itself, through what procman
//! hands the console's domain (the kernel's log with CONSOLE_LOG, the
//! ports 0x3F8-0x3FF with DEVICE_PORTS, ISA line 4 with DEVICE_INTERRUPT),
//! and is the one writer of the port from then on.
//!
//! Four kinds of thread share one lock on the terminal: the input thread
//! (woken by the UART's receive interrupt, never polling: it feeds the
//! line discipline and echoes), the log thread (woken by the kernel log's
//! event: whole lines, drawn around the current line), and the door
//! threads serving WRITE and READ_LINE (`console::ConsoleServer`). The
//! programs named in its arguments are started with a client reference to
//! its door as their descriptor 1; the first is the session, whose end
//! ends the console with its status (the kernel then has COM1 back).
//!
//! It must never write to the port outside the lock, and never block the
//! kernel: it reads the log as fast as lines come and counts any lost.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::kcall::MAX_LOG_READ;
use abi::{DescriptorSlot, Rights};
use console::{
    Completed, ConsoleError, ConsoleServer, END, LINE, LineDiscipline, MAX_WRITE, ReadLineReply,
    Screen,
};
use userlib::interface::{Call, Refusal};
use userlib::{Event, OwnedDescriptor, Startup, device, kernel, println, procman};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// COM1's registers.
const COM1: u16 = 0x3f8;
const DATA: u16 = COM1;
const INTERRUPT_ENABLE: u16 = COM1 + 1;
const FIFO_CONTROL: u16 = COM1 + 2;
const MODEM_CONTROL: u16 = COM1 + 4;
const LINE_STATUS: u16 = COM1 + 5;
/// LSR: a received byte waits.
const DATA_READY: u8 = 0x01;
/// LSR: the transmitter takes another byte.
const TRANSMIT_EMPTY: u8 = 0x20;
/// COM1's ISA interrupt line.
const COM1_LINE: u32 = 4;
/// The security type of the console's door (its number in the manifest's
/// `types`).
const SECURITY_TYPE: u32 = 4;
/// Lines typed and not yet read that the console keeps (older ones go).
const MAX_TYPED_LINES: usize = 64;
/// Threads serving the door: one may wait in READ_LINE while the others
/// write.
const DOOR_THREADS: usize = 3;

/// Spinning on the terminal's lock gives the CPU to the holder.
struct YieldWhileLocked;

impl spin::relax::RelaxStrategy for YieldWhileLocked {
    fn relax() {
        let _ = kernel::yield_now();
    }
}

/// What the threads share: the screen's current line, the line being
/// typed and the lines typed.
struct Terminal {
    screen: Screen,
    discipline: LineDiscipline,
    typed: VecDeque<Completed>,
}

static TERMINAL: spin::mutex::Mutex<Terminal, YieldWhileLocked> =
    spin::mutex::Mutex::new(Terminal {
        screen: Screen::new(),
        discipline: LineDiscipline::new(),
        typed: VecDeque::new(),
    });

/// Writes `bytes` to COM1 (each `\n` as `\r\n`). Called with the lock held.
fn emit(bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            put(b'\r');
        }
        put(byte);
    }
}

fn put(byte: u8) {
    // Bounded, as the kernel's: a missing UART cannot hang the console.
    for _ in 0..100_000 {
        if device::read_u8(LINE_STATUS) & TRANSMIT_EMPTY != 0 {
            break;
        }
    }
    device::write_u8(DATA, byte);
}

/// 115200 8N1 stays as the kernel set it; FIFOs on with a one-byte trigger
/// (each key interrupts), the receive interrupt on, OUT2 (which gates the
/// UART's interrupt onto the ISA line).
fn uart_init() {
    device::write_u8(FIFO_CONTROL, 0x07);
    device::write_u8(MODEM_CONTROL, 0x0b);
    device::write_u8(INTERRUPT_ENABLE, 0x01);
}

/// The input thread: each receive interrupt, every byte waiting goes
/// through the line discipline; finished lines wake READ_LINE.
///
/// The line is acknowledged (unmasked) before the UART is drained, never
/// after: COM1's line is edge-triggered, and an edge that comes while the
/// line is masked may be dropped by the I/O APIC (KVM's is one that does),
/// so a byte that arrived between the delivery and the acknowledgement
/// would otherwise wait, unseen, for a next byte that never comes
/// (ABI.md §7a.4).
fn input(interrupt: OwnedDescriptor, event: OwnedDescriptor, lines: Arc<Event>) {
    let mut echo = Vec::new();
    let mut out = Vec::new();
    loop {
        // Nothing delivered yet on the first pass: the acknowledgement
        // changes nothing (ABI.md §7a.4).
        if kernel::interrupt_ack(interrupt.descriptor()).is_err() {
            println!("console: the input interrupt failed; input stops");
            return;
        }
        let mut finished = 0;
        {
            let mut terminal = TERMINAL.lock();
            let terminal = &mut *terminal;
            while device::read_u8(LINE_STATUS) & DATA_READY != 0 {
                let byte = device::read_u8(DATA);
                if let Some(done) = terminal.discipline.feed(byte, &mut echo) {
                    if terminal.typed.len() == MAX_TYPED_LINES {
                        terminal.typed.pop_front();
                    }
                    terminal.typed.push_back(done);
                    finished += 1;
                }
            }
            terminal.screen.write(&echo, &mut out);
            emit(&out);
        }
        echo.clear();
        out.clear();
        for _ in 0..finished {
            let _ = lines.signal();
        }
        if kernel::event_wait(event.descriptor()).is_err() {
            println!("console: the input interrupt failed; input stops");
            return;
        }
    }
}

/// The log thread: the kernel's lines as they arrive, whole, around the
/// current line.
fn log(log: OwnedDescriptor, event: OwnedDescriptor) {
    let mut lines = alloc::vec![0u8; MAX_LOG_READ];
    let mut out = Vec::new();
    loop {
        loop {
            let read = match kernel::log_read(log.descriptor(), &mut lines) {
                Ok(read) => read,
                Err(error) => {
                    println!("console: LOG_READ failed: {error}");
                    return;
                }
            };
            if read.bytes == 0 && read.lost == 0 {
                break;
            }
            let mut terminal = TERMINAL.lock();
            if read.lost != 0 {
                let notice = alloc::format!("console: {} kernel log lines lost\n", read.lost);
                terminal.screen.log_lines(notice.as_bytes(), &mut out);
            }
            terminal.screen.log_lines(&lines[..read.bytes], &mut out);
            emit(&out);
            drop(terminal);
            out.clear();
        }
        if kernel::event_wait(event.descriptor()).is_err() {
            return;
        }
    }
}

/// One door thread's server: WRITE and READ_LINE.
struct Console {
    lines: Arc<Event>,
}

impl ConsoleServer for Console {
    fn write(&mut self, _call: &mut Call<'_>, bytes: &[u8]) -> Result<(), Refusal<ConsoleError>> {
        if bytes.len() > MAX_WRITE {
            return Err(ConsoleError::TooLong.into());
        }
        let mut out = Vec::with_capacity(bytes.len() + 8);
        let mut terminal = TERMINAL.lock();
        terminal.screen.write(bytes, &mut out);
        emit(&out);
        Ok(())
    }

    fn read_line(&mut self, call: &mut Call<'_>) -> Result<ReadLineReply, Refusal<ConsoleError>> {
        loop {
            let next = TERMINAL.lock().typed.pop_front();
            match next {
                Some(Completed::Line(line)) => {
                    call.push_bytes(&line)
                        .map_err(|_| ConsoleError::ReplyDoesNotFit)?;
                    return Ok(ReadLineReply {
                        status: LINE,
                        reserved: 0,
                    });
                }
                Some(Completed::End) => {
                    return Ok(ReadLineReply {
                        status: END,
                        reserved: 0,
                    });
                }
                // A signal counts one finished line; one taken by another
                // reader leaves a surplus that costs one more look.
                None => self.lines.wait().map_err(Refusal::Kernel)?,
            };
        }
    }
}

fn run(startup: Startup) -> i32 {
    let programs: Vec<&str> = core::str::from_utf8(startup.arguments)
        .unwrap_or("")
        // The manifest's arguments, each ended by a NUL.
        .split(|c: char| c == '\0' || c.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .collect();
    let kernel_log = match procman::console_log() {
        Ok(log) => log,
        Err(error) => {
            println!("console: cannot take the kernel log: {error}");
            return 1;
        }
    };
    if let Err(error) = procman::device_ports(COM1, 8) {
        println!("console: cannot have COM1's ports: {error}");
        return 1;
    }
    let line = match procman::device_interrupt(COM1_LINE) {
        Ok(line) => line,
        Err(error) => {
            println!("console: cannot have COM1's interrupt: {error}");
            return 1;
        }
    };
    uart_init();
    let (door, client) = match procman::create_object(None, false, SECURITY_TYPE) {
        Ok(object) => (Arc::new(object.owner), object.client),
        Err(error) => {
            println!("console: cannot create its door: {error}");
            return 1;
        }
    };
    let lines = match Event::create() {
        Ok(event) => Arc::new(event),
        Err(error) => {
            println!("console: cannot create an event: {error}");
            return 1;
        }
    };
    let stack = userlib::thread::DEFAULT_STACK_SIZE;
    let started = [
        userlib::spawn_thread(move || log(kernel_log.log, kernel_log.event), stack),
        {
            let lines = lines.clone();
            userlib::spawn_thread(move || input(line.interrupt, line.event, lines), stack)
        },
    ];
    for _ in 0..DOOR_THREADS {
        let (door, lines) = (door.clone(), lines.clone());
        let thread = userlib::spawn_thread(
            move || {
                let error = Console { lines }.serve(&door);
                println!("console: stopped serving: {error}");
            },
            stack,
        );
        if let Err(error) = thread {
            println!("console: cannot start a thread: {error}");
            return 1;
        }
    }
    if let Some(Err(error)) = started.iter().find(|s| s.is_err()) {
        println!("console: cannot start a thread: {error}");
        return 1;
    }
    println!("console: COM1 is served by the console server");
    let mut session = None;
    for program in programs {
        let slot = DescriptorSlot::copy(client.descriptor(), Rights::DOOR_CLIENT);
        match procman::spawn(program, &[], &[slot]) {
            Ok(pid) => {
                session.get_or_insert(pid);
            }
            Err(error) => println!("console: cannot start {program}: {error}"),
        }
    }
    let Some(session) = session else {
        // No session: the door threads serve whoever has the door, for
        // ever; this thread waits on an event nobody signals.
        return match Event::create().and_then(|idle| idle.wait()) {
            Ok(_) | Err(_) => 1,
        };
    };
    let ended = procman::wait(session);
    // The session's last prompt gets its line end: whatever the system
    // writes next starts a line of its own.
    {
        let mut terminal = TERMINAL.lock();
        if !terminal.screen.partial().is_empty() {
            let mut out = Vec::new();
            terminal.screen.write(b"\n", &mut out);
            emit(&out);
        }
    }
    match ended {
        Ok(status) => status as i32,
        Err(error) => {
            println!("console: cannot wait for the session: {error}");
            1
        }
    }
}
