//! The serial console server: it drives COM1 itself, through what procman
//! hands the console's domain (the kernel's log with CONSOLE_LOG, the
//! ports 0x3F8-0x3FF with DEVICE_PORTS, ISA line 4 with DEVICE_INTERRUPT),
//! and is the one writer of the port from then on. It is also a pty server
//! (ABI.md §7a.7, D49): it registers `/dev/ptmx`, serves pairs as the
//! standalone `pty` server does, and is itself the master of its first
//! pair, whose slave is the session.
//!
//! Its threads: the input thread (woken by the UART's receive interrupt,
//! never polling) types what arrives into the pair's line discipline; the
//! pair's pump writes the session's output (and the echo) to COM1; the log
//! thread (woken by the kernel log's event) writes whole lines around the
//! current line; the door threads serve the pty protocol. One lock, the
//! terminal's, orders every write to the port. The first word of its
//! arguments is the session's program (the rest its arguments), started
//! with the pair's slave as its stdin, stdout and stderr and the pair's
//! reference as its descriptor 1; the session's end ends the console with
//! its status (the kernel then has COM1 back).
//!
//! It must never write to the port outside the lock, and never block the
//! kernel: it reads the log as fast as lines come and counts any lost.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::kcall::MAX_LOG_READ;
use abi::pty::PtyOpenRequest;
use abi::stream::StdStream;
use abi::{DescriptorSlot, Rights};
use console::Screen;
use pty::PtyClient;
use pty::service::{PTY_SECURITY_TYPE, Pair, Service};
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
/// Threads serving the pty door: one may wait for room in a slave's input
/// while the others answer.
const DOOR_THREADS: usize = 3;

/// Spinning on the terminal's lock gives the CPU to the holder.
struct YieldWhileLocked;

impl spin::relax::RelaxStrategy for YieldWhileLocked {
    fn relax() {
        let _ = kernel::yield_now();
    }
}

/// What the threads share: the screen's current line.
struct Terminal {
    screen: Screen,
}

static TERMINAL: spin::mutex::Mutex<Terminal, YieldWhileLocked> =
    spin::mutex::Mutex::new(Terminal {
        screen: Screen::new(),
    });

/// Writes the console's own lines to COM1 (each `\n` as `\r\n`). Called
/// with the lock held.
fn emit(bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            put(b'\r');
        }
        put(byte);
    }
}

/// Writes the pair's output to COM1 as it is: the pty processed it
/// (`\r\n` already, unless the session turned that off). Called with the
/// lock held.
fn emit_processed(bytes: &[u8]) {
    for &byte in bytes {
        put(byte);
    }
}

/// The master of the console's pair: its output on the screen.
fn show(bytes: &[u8]) {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut terminal = TERMINAL.lock();
    terminal.screen.write(bytes, &mut out);
    emit_processed(&out);
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

/// The input thread: each receive interrupt, every byte waiting goes to
/// the pair's line discipline (which echoes through the pair's output).
///
/// The line is acknowledged (unmasked) before the UART is drained, never
/// after: COM1's line is edge-triggered, and an edge that comes while the
/// line is masked may be dropped by the I/O APIC (KVM's is one that does),
/// so a byte that arrived between the delivery and the acknowledgement
/// would otherwise wait, unseen, for a next byte that never comes
/// (ABI.md §7a.4).
fn input(interrupt: OwnedDescriptor, event: OwnedDescriptor, pair: Arc<Pair>) {
    let mut typed = Vec::new();
    loop {
        // Nothing delivered yet on the first pass: the acknowledgement
        // changes nothing (ABI.md §7a.4).
        if kernel::interrupt_ack(interrupt.descriptor()).is_err() {
            println!("console: the input interrupt failed; input stops");
            return;
        }
        // Reading the receive registers needs no lock: only the writers
        // of the port share one.
        while device::read_u8(LINE_STATUS) & DATA_READY != 0 {
            typed.push(device::read_u8(DATA));
        }
        pair.type_bytes(&typed);
        typed.clear();
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

/// The session's program and its arguments (the manifest's arguments,
/// each ended by a NUL).
fn session_words(arguments: &[u8]) -> (String, Vec<u8>) {
    let text = core::str::from_utf8(arguments).unwrap_or("");
    let mut words = text
        .split(|c: char| c == '\0' || c.is_ascii_whitespace())
        .filter(|word| !word.is_empty());
    let program = words.next().unwrap_or("").into();
    let rest: Vec<&str> = words.collect();
    (program, rest.join(" ").into_bytes())
}

/// Opens the console's own pair through its own door (so the reference
/// used becomes the pair's, for the session), COM1 its master.
fn open_own_pair(service: &Arc<Service>, client: &OwnedDescriptor) -> Result<Arc<Pair>, String> {
    let own = kernel::process_id().map_err(|e| alloc::format!("{e}"))? as u32;
    service.master_next_pair(Box::new(show));
    let reply = PtyClient::new(client.descriptor())
        .open(PtyOpenRequest::new(own))
        .map_err(|e| alloc::format!("{e:?}"))?;
    service
        .pair_by_number(reply.header.pair)
        .ok_or_else(|| "the pair went".into())
}

fn run(startup: Startup) -> i32 {
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
    let (program, arguments) = session_words(startup.arguments);
    let service = Service::new();
    let door = match procman::create_object(Some("/dev/ptmx"), false, PTY_SECURITY_TYPE) {
        Ok(object) => object,
        Err(error) => {
            println!("console: cannot register /dev/ptmx: {error}");
            return 1;
        }
    };
    if let Err(error) = pty::service::serve(&service, door.owner, DOOR_THREADS) {
        println!("console: cannot start a thread: {error}");
        return 1;
    }
    let pair = match open_own_pair(&service, &door.client) {
        Ok(pair) => pair,
        Err(error) => {
            println!("console: cannot open its terminal's pair: {error}");
            return 1;
        }
    };
    let stack = userlib::thread::DEFAULT_STACK_SIZE;
    let started = [
        userlib::spawn_thread(move || log(kernel_log.log, kernel_log.event), stack),
        {
            let pair = pair.clone();
            userlib::spawn_thread(move || input(line.interrupt, line.event, pair), stack)
        },
    ];
    if let Some(Err(error)) = started.iter().find(|s| s.is_err()) {
        println!("console: cannot start a thread: {error}");
        return 1;
    }
    println!(
        "console: COM1 is served by the console server (its terminal is /dev/pty/{})",
        pair.number()
    );
    let Some((stdin, stdout)) = service.take_own_slave_ends(pair.number()) else {
        println!("console: the pair has no slave ends");
        return 1;
    };
    let streams = [
        StdStream::pipe(stdin.pipe()),
        StdStream::pipe(stdout.pipe()),
        StdStream::pipe(stdout.pipe()),
    ];
    // Moved, never copied: the reference keeps the pair's cookie.
    let reference = door.client.into_raw();
    let slot = DescriptorSlot::moving(reference, Rights::DOOR_CLIENT);
    let spawned = procman::spawn_with_streams(&program, &arguments, &[slot], streams);
    // The session holds its own ends now; the console's go, so the
    // session's end is the pipes' end.
    drop((stdin, stdout));
    let session = match spawned {
        Ok(pid) => pid,
        Err(error) => {
            println!("console: cannot start {program}: {error}");
            let _ = kernel::close(reference);
            // No session: the door threads serve whoever has the door,
            // for ever; this thread waits on an event nobody signals.
            return match Event::create().and_then(|idle| idle.wait()) {
                Ok(_) | Err(_) => 1,
            };
        }
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
