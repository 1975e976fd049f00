//! MSG-CONS: the device grants a console driver (or any driver) asks
//! procman for (ABI.md §7a.4, §9 D42): DEVICE_PORTS gives the caller an
//! I/O port range its domain's `io_ports` cover, DEVICE_INTERRUPT an
//! interrupt line its `irqs` name (an interrupt object and the event it
//! signals); every refusal is its own error and changes nothing.
//!
//! These cases run in the second boot (`init=procman
//! run=conformance-portals`): the runner is in the `tests` domain, whose
//! manifest entry has `io_ports = ["0x40-0x43", "0x2f8-0x2ff"]` and
//! `irqs = [0, 5]`; its peers are in `users`, which has neither. A
//! refusal is made twice and the second is measured (procman's table and
//! the kernel's COUNTERS before and after, as for MSG-PORTAL).

use alloc::format;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use abi::kcall::{IoPortRequest, LogTakeRequest, MAX_LOG_READ};
use abi::procman::{
    CONSOLE_LOG, DEVICE_INTERRUPT, DEVICE_PORTS, InterruptLineRequest, IoPortsRequest, KILL,
    KILLED, KillRequest, PROCESS_LIST, PROCESS_RUNNING, ProcessEntry, ProcessListReply,
    ProcessListRequest, ProcmanError,
};
use abi::{Descriptor, Error, KernelFunction, ObjectKind, Rights};
use userlib::kernel;
use zerocopy::{FromBytes, IntoBytes};

use super::kit;
use super::portal::{refused_twice, send_bytes, slot};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value};
use crate::peer::Step;

/// The tests domain's second port range (COM2, which the suite's machine
/// does not have: reads give 0xFF, nothing else happens).
const COM2: u16 = 0x2f8;
/// Its line status register.
const COM2_LINE_STATUS: u16 = 0x2fd;
/// The PIT's ports and line (the tests domain's first range and line 0).
const PIT_CHANNEL_0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
const PIT_LINE: u32 = 0;
/// A line the tests domain may have and nothing drives (ISA IRQ 5).
const QUIET_LINE: u32 = 5;

/// A DEVICE_PORTS or DEVICE_INTERRUPT error reply with `error`.
const fn refusal(function: &'static str, error: ProcmanError) -> Expect {
    Expect::replied(function, u32::MAX, error as u32, 8, 0)
}

fn ports_data(request: IoPortsRequest) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(request.as_bytes());
    bytes
}

fn line_data(request: InterruptLineRequest) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(request.as_bytes());
    bytes
}

/// DEVICE_PORTS from the runner.
fn ports(first: u16, count: u16) -> Result<kit::Call, Failed> {
    send_bytes(DEVICE_PORTS, &ports_data(IoPortsRequest::new(first, count)))
}

/// DEVICE_INTERRUPT from the runner.
fn line(request: InterruptLineRequest) -> Result<kit::Call, Failed> {
    send_bytes(DEVICE_INTERRUPT, &line_data(request))
}

/// A DEVICE_INTERRUPT the runner was granted: its interrupt object and
/// event, adopted by the case (closed when it ends).
fn granted_line(
    context: &mut Context,
    number: u32,
) -> Result<(kit::Call, Descriptor, Descriptor), Failed> {
    let call = line(InterruptLineRequest::new(number))?;
    let (interrupt, _) = slot(&call.registers, &call.bytes, 0);
    let (event, _) = slot(&call.registers, &call.bytes, 1);
    if call.registers.arg0 != 0 || interrupt == Descriptor::NULL || event == Descriptor::NULL {
        return Err(Failed(format!(
            "DEVICE_INTERRUPT {number} was refused: {}",
            crate::context::describe_registers(&call.registers)
        )));
    }
    Ok((call, context.adopt(interrupt), context.adopt(event)))
}

/// The runner's PIT channel 0 set to count `count` once (mode 0).
fn pit_one_shot(count: u16) {
    let [low, high] = count.to_le_bytes();
    userlib::device::write_u8(PIT_COMMAND, 0b0011_0000);
    userlib::device::write_u8(PIT_CHANNEL_0, low);
    userlib::device::write_u8(PIT_CHANNEL_0, high);
}

/// The peer (domain `users`) sends `function` with `data`: its registers.
fn peer_sends(context: &mut Context, function: abi::Function, data: &[u8]) -> Outcome {
    let (peer, _) = context.procman_peer()?;
    peer.trap(Step::send(function, 0, data, &[], 64))?;
    let before = super::portal::snapshot(context)?;
    let result = peer.trap(Step::send(function, 0, data, &[], 64))?;
    super::portal::unchanged(context, &before)?;
    Ok(context.observe(result.registers))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-CONS-001",
        rule: "DEVICE_PORTS of a range the domain's io_ports cover is granted (an empty reply), and the caller then uses the ports with `in` and runs on",
        section: "7a.4",
        decisions: &["D42"],
        expect: Expect::replied("DEVICE_PORTS", 0, 0, 8, 0),
        run: |context| {
            let call = ports(COM2, 8)?;
            if call.registers.arg0 == 0 {
                // Without the grant this `in` would end the runner (#GP).
                let status = userlib::device::read_u8(COM2_LINE_STATUS);
                context.check(
                    status == 0xff,
                    &format!("COM2's absent line status read {status:#x}, not 0xff"),
                );
            }
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-CONS-002",
        rule: "DEVICE_PORTS of a part of an io_ports entry (one port inside it) is granted",
        section: "7a.4",
        decisions: &["D42"],
        expect: Expect::replied("DEVICE_PORTS", 0, 0, 8, 0),
        run: |context| Ok(context.observe(ports(COM2_LINE_STATUS, 1)?.registers)),
    },
    Case {
        id: "MSG-CONS-003",
        rule: "DEVICE_PORTS of a range reaching one port past an io_ports entry is PM_PORTS_DENIED and changes nothing",
        section: "7a.4",
        decisions: &["D42"],
        expect: refusal("DEVICE_PORTS", ProcmanError::PortsDenied),
        run: |context| refused_twice(context, || ports(COM2, 9)),
    },
    Case {
        id: "MSG-CONS-004",
        rule: "DEVICE_PORTS of a port no io_ports entry names (COM1's 0x3F8) is PM_PORTS_DENIED: procman asks the policy before the kernel",
        section: "7a.4",
        decisions: &["D42"],
        expect: refusal("DEVICE_PORTS", ProcmanError::PortsDenied),
        run: |context| refused_twice(context, || ports(0x3f8, 8)),
    },
    Case {
        id: "MSG-CONS-005",
        rule: "DEVICE_PORTS of 0 ports is PM_BAD_REQUEST and changes nothing",
        section: "7a.4",
        decisions: &[],
        expect: refusal("DEVICE_PORTS", ProcmanError::BadRequest),
        run: |context| refused_twice(context, || ports(COM2, 0)),
    },
    Case {
        id: "MSG-CONS-006",
        rule: "DEVICE_PORTS past port 0xFFFF (0xFFFF and 2 ports) is PM_BAD_REQUEST and changes nothing",
        section: "7a.4",
        decisions: &[],
        expect: refusal("DEVICE_PORTS", ProcmanError::BadRequest),
        run: |context| refused_twice(context, || ports(0xffff, 2)),
    },
    Case {
        id: "MSG-CONS-007",
        rule: "DEVICE_PORTS with its reserved field set is PM_BAD_REQUEST and changes nothing",
        section: "7a.4",
        decisions: &[],
        expect: refusal("DEVICE_PORTS", ProcmanError::BadRequest),
        run: |context| {
            let request = IoPortsRequest::new(COM2, 1).with_reserved(1);
            refused_twice(context, || send_bytes(DEVICE_PORTS, &ports_data(request)))
        },
    },
    Case {
        id: "MSG-CONS-008",
        rule: "DEVICE_PORTS from a domain without io_ports (users) is PM_PORTS_DENIED and changes nothing",
        section: "7a.4",
        decisions: &["D42"],
        expect: refusal("the peer's DEVICE_PORTS", ProcmanError::PortsDenied),
        run: |context| {
            peer_sends(
                context,
                DEVICE_PORTS,
                &ports_data(IoPortsRequest::new(COM2, 8)),
            )
        },
    },
    Case {
        id: "MSG-CONS-009",
        rule: "DEVICE_INTERRUPT of a line the domain's irqs name replies with two descriptors: slot 0 an interrupt object (INTERRUPT rights), slot 1 an event (WAIT, TRANSFER)",
        section: "7a.4",
        decisions: &["D42"],
        expect: Expect::replied("DEVICE_INTERRUPT", 0, 0, 8, 2),
        run: |context| {
            let (call, interrupt, event) = granted_line(context, QUIET_LINE)?;
            let interrupt_info = kernel::descriptor_info(interrupt)?;
            let event_info = kernel::descriptor_info(event)?;
            context.check(
                interrupt_info.kind == Some(ObjectKind::Interrupt)
                    && interrupt_info.rights == Rights::INTERRUPT,
                &format!("slot 0 is {interrupt_info:?}, not an interrupt object with INTERRUPT"),
            );
            context.check(
                event_info.kind == Some(ObjectKind::Event)
                    && event_info.rights == Rights(Rights::WAIT.0 | Rights::TRANSFER.0),
                &format!("slot 1 is {event_info:?}, not an event with WAIT and TRANSFER"),
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-CONS-010",
        rule: "DEVICE_INTERRUPT of a line another interrupt object holds passes the kernel's LINE_TAKEN on and changes nothing (procman's event is closed); once the holder closes it the line is granted again",
        section: "7a.4",
        decisions: &["D42"],
        expect: Expect::replied("DEVICE_INTERRUPT", u32::MAX, Error::LineTaken as u32, 8, 0),
        run: |context| {
            let (_, interrupt, _) = granted_line(context, QUIET_LINE)?;
            let outcome = refused_twice(context, || line(InterruptLineRequest::new(QUIET_LINE)))?;
            let _ = kernel::close(interrupt);
            granted_line(context, QUIET_LINE)?;
            Ok(outcome)
        },
    },
    Case {
        id: "MSG-CONS-011",
        rule: "DEVICE_INTERRUPT of a line the domain's irqs do not name is PM_INTERRUPT_DENIED and changes nothing",
        section: "7a.4",
        decisions: &["D42"],
        expect: refusal("DEVICE_INTERRUPT", ProcmanError::InterruptDenied),
        run: |context| refused_twice(context, || line(InterruptLineRequest::new(6))),
    },
    Case {
        id: "MSG-CONS-012",
        rule: "DEVICE_INTERRUPT of line 16 (past the ISA lines) is PM_BAD_REQUEST and changes nothing",
        section: "7a.4",
        decisions: &[],
        expect: refusal("DEVICE_INTERRUPT", ProcmanError::BadRequest),
        run: |context| refused_twice(context, || line(InterruptLineRequest::new(16))),
    },
    Case {
        id: "MSG-CONS-013",
        rule: "DEVICE_INTERRUPT with its reserved field set is PM_BAD_REQUEST and changes nothing",
        section: "7a.4",
        decisions: &[],
        expect: refusal("DEVICE_INTERRUPT", ProcmanError::BadRequest),
        run: |context| {
            let request = InterruptLineRequest::new(QUIET_LINE).with_reserved(1);
            refused_twice(context, || line(request))
        },
    },
    Case {
        id: "MSG-CONS-014",
        rule: "DEVICE_INTERRUPT from a domain without irqs (users) is PM_INTERRUPT_DENIED and changes nothing",
        section: "7a.4",
        decisions: &["D42"],
        expect: refusal("the peer's DEVICE_INTERRUPT", ProcmanError::InterruptDenied),
        run: |context| {
            peer_sends(
                context,
                DEVICE_INTERRUPT,
                &line_data(InterruptLineRequest::new(QUIET_LINE)),
            )
        },
    },
    Case {
        id: "MSG-CONS-015",
        rule: "a driver served by procman alone: DEVICE_PORTS for the PIT and DEVICE_INTERRUPT for its line 0; the one-shot count's interrupt signals the event procman handed over (EVENT_WAIT returns), INTERRUPT_ACK answers",
        section: "7a.4",
        decisions: &["D42"],
        expect: Expect::replied("EVENT_WAIT on the granted event", 0, 0, 8, 0),
        run: |context| {
            let call = ports(PIT_CHANNEL_0, 4)?;
            if call.registers.arg0 != 0 {
                return Err(Failed(format!(
                    "DEVICE_PORTS for the PIT was refused: {}",
                    crate::context::describe_registers(&call.registers)
                )));
            }
            let (_, interrupt, event) = granted_line(context, PIT_LINE)?;
            // As MSG-DEV-022: a yielding thread keeps the system from
            // looking idle (the runner's hang sentinel) until the event came,
            // or for a few seconds on the failure path only.
            let waiting = Arc::new(AtomicBool::new(true));
            let still = Arc::clone(&waiting);
            let start = kernel::clock()?;
            let spinner = userlib::spawn_thread(
                move || {
                    while still.load(Ordering::Acquire)
                        && kernel::clock()
                            .is_ok_and(|now| now.ticks < start.ticks + u64::from(5 * start.hz))
                    {
                        let _ = kernel::yield_now();
                    }
                },
                16 * 1024,
            )?;
            context.adopt(spinner.into_raw());
            pit_one_shot(1000);
            let wait = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            let ack = kernel::interrupt_ack(interrupt);
            context.check(ack.is_ok(), &format!("INTERRUPT_ACK: {ack:?}"));
            waiting.store(false, Ordering::Release);
            Ok(context.observe(wait.registers))
        },
    },
    Case {
        id: "MSG-CONS-016",
        rule: "LOG_TAKE naming an event reference without SIGNAL is MISSING_RIGHT and changes nothing (first boot: the runner holds machine control)",
        section: "6.7",
        decisions: &["D43"],
        expect: Expect::error("LOG_TAKE", Error::MissingRight),
        run: |context| {
            let event = log_event(context)?;
            let wait_only = context.duplicate(event, Rights::WAIT)?;
            log_take_refused(context, LogTakeRequest::new(wait_only))
        },
    },
    Case {
        id: "MSG-CONS-017",
        rule: "LOG_TAKE naming a door reference instead of an event is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.7",
        decisions: &["D43"],
        expect: Expect::error("LOG_TAKE", Error::WrongObjectType),
        run: |context| {
            let door = context.user_door()?;
            log_take_refused(context, LogTakeRequest::new(door.client))
        },
    },
    Case {
        id: "MSG-CONS-018",
        rule: "LOG_TAKE with its reserved field set is RESERVED_BITS and changes nothing",
        section: "6.7",
        decisions: &[],
        expect: Expect::error("LOG_TAKE", Error::ReservedBits),
        run: |context| {
            let event = log_event(context)?;
            let mut request = LogTakeRequest::new(event);
            request.reserved = 1;
            log_take_refused(context, request)
        },
    },
    Case {
        id: "MSG-CONS-019",
        rule: "LOG_TAKE replies one slot, the kernel-log object (kind 11, KERNEL_LOG rights); a second LOG_TAKE while it lives is LOG_TAKEN and changes nothing",
        section: "6.7",
        decisions: &["D43"],
        expect: Expect::error("the second LOG_TAKE", Error::LogTaken),
        run: |context| {
            let event = log_event(context)?;
            let log = context.adopt(kernel::log_take(event)?.into_raw());
            let info = context.info(log);
            context.check(
                matches!(info, Ok(i) if i.kind == Some(ObjectKind::KernelLog) && i.rights == Rights::KERNEL_LOG),
                &format!("the kernel-log object's DESCRIPTOR_INFO: {info:?}"),
            );
            let outcome = log_take_refused(context, LogTakeRequest::new(event));
            context.close(log)?;
            outcome
        },
    },
    Case {
        id: "MSG-CONS-020",
        rule: "while the log is taken, a DEBUG_WRITE line reaches LOG_READ whole and marked (`| `), msgRetVal its bytes, LogReadReply{lines 1, lost 0}, and the taker's event is signalled; nothing is left after it",
        section: "6.7",
        decisions: &["D43", "D45"],
        expect: Expect::replied("LOG_READ", 11, 0, 16 + 11, 0).with_buffer(&[
            (8, Field::Word(Value::Is(1))),
            (12, Field::Word(Value::Is(0))),
            (16, Field::Bytes(b"| log: 020\n")),
        ]),
        run: |context| {
            let event = log_event(context)?;
            let log = context.adopt(kernel::log_take(event)?.into_raw());
            kernel::debug_write(b"log: ")?;
            kernel::debug_write(b"020\n")?;
            // Signalled once the line was whole: this returns at once.
            kernel::event_wait(event)?;
            let call = log_read_call(log, LOG_READ_TOTAL)?;
            let empty = log_read_call(log, LOG_READ_TOTAL)?;
            context.check(
                empty.registers.arg0 == 0,
                &format!("a second LOG_READ found more: {:?}", empty.registers),
            );
            context.close(log)?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-CONS-021",
        rule: "LOG_READ with a buffer without room for the header and one 256-byte line is BAD_SIZES and changes nothing: the line waiting is read whole afterwards",
        section: "6.7",
        decisions: &["D45"],
        expect: Expect::error("LOG_READ", Error::BadSizes),
        run: |context| {
            let event = log_event(context)?;
            let log = context.adopt(kernel::log_take(event)?.into_raw());
            kernel::debug_write(b"log: 021\n")?;
            let outcome = kit::refused(context, KernelFunction::LogRead, log, &[]);
            let mut lines = [0u8; MAX_LOG_READ];
            let read = kernel::log_read(log, &mut lines);
            context.check(
                matches!(read, Ok(r) if r.lines == 1 && &lines[..r.bytes] == b"| log: 021\n"),
                &format!("after the refusal LOG_READ gave {read:?}"),
            );
            context.close(log)?;
            outcome
        },
    },
    Case {
        id: "MSG-CONS-022",
        rule: "a full log ring drops its oldest lines and never blocks: 100 lines of 200 bytes leave the 81 newest (16,384 / 200), and LOG_READ reports lost 19; the next read loses none",
        section: "6.7",
        decisions: &["D44"],
        expect: Expect::replied("the first LOG_READ", 2000, 0, 16 + 2000, 0).with_buffer(&[
            (8, Field::Word(Value::Is(10))),
            (12, Field::Word(Value::Is(19))),
        ]),
        run: |context| {
            let event = log_event(context)?;
            let log = context.adopt(kernel::log_take(event)?.into_raw());
            let mut line = [b'.'; 198];
            line[197] = b'\n';
            for _ in 0..100 {
                kernel::debug_write(&line)?;
            }
            let first = log_read_call(log, LOG_READ_TOTAL)?;
            let mut lines = [0u8; MAX_LOG_READ];
            let mut rest = 0;
            loop {
                let read = kernel::log_read(log, &mut lines)?;
                context.check(read.lost == 0, "a later read reported lost lines");
                if read.lines == 0 {
                    break;
                }
                rest += read.lines;
            }
            context.check(
                rest == 71,
                &format!("{rest} lines after the first read, not 71"),
            );
            context.close(log)?;
            Ok(context.observe_buffer(first.registers, first.msg_ptr, first.bytes))
        },
    },
    Case {
        id: "MSG-CONS-023",
        rule: "IO_PORT_GRANT of COM1 is KERNEL_DEVICE while the kernel logs there and granted while the log is taken; once the kernel-log object is closed it is KERNEL_DEVICE again and changes nothing",
        section: "6.7",
        decisions: &["D43"],
        expect: Expect::error("IO_PORT_GRANT of COM1 after the CLOSE", Error::KernelDevice),
        run: |context| {
            let com1 = IoPortRequest::new(Descriptor::NULL, 0x3f8, 8);
            let before = kernel_refused_grant(context, com1)?;
            context.check_registers(
                "IO_PORT_GRANT of COM1 before LOG_TAKE",
                &before.registers,
                &kit::error(Error::KernelDevice),
            );
            let event = log_event(context)?;
            let log = context.adopt(kernel::log_take(event)?.into_raw());
            // A peer gets the ports, so the runner's own table stays as it was.
            let peer = context.peer(&[])?;
            let granted = kernel::io_port_grant(peer.process, 0x3f8, 8);
            context.check(granted.is_ok(), &format!("COM1 while taken: {granted:?}"));
            context.close(log)?;
            kernel_refused_grant(context, com1)
        },
    },
    Case {
        id: "MSG-CONS-024",
        rule: "PROCESS_KILL on a process handle with SEND ends that process (an empty reply); a second PROCESS_KILL of the same handle is PEER_DIED",
        section: "6.7",
        decisions: &["D47"],
        expect: Expect::replied("PROCESS_KILL", 0, 0, 8, 0),
        run: |context| {
            let peer = context.peer(&[])?;
            let call = kit::send(
                KernelFunction::ProcessKill.function(),
                peer.process,
                abi::kcall::ExitRequest::new(7).as_bytes(),
                &[],
                64,
            )?;
            context.settle();
            let again = kernel::process_kill(peer.process, 7);
            context.check(
                again == Err(Error::PeerDied),
                &format!("a second PROCESS_KILL gave {again:?}"),
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-CONS-025",
        rule: "PROCESS_KILL through a process handle without SEND is MISSING_RIGHT and changes nothing (the process runs on)",
        section: "6.7",
        decisions: &["D47"],
        expect: Expect::error("PROCESS_KILL", Error::MissingRight),
        run: |context| {
            let peer = context.peer(&[])?;
            let no_send = context.duplicate(peer.process, Rights::TRANSFER)?;
            let outcome = kit::refused(
                context,
                KernelFunction::ProcessKill,
                no_send,
                abi::kcall::ExitRequest::new(7).as_bytes(),
            );
            let alive = kernel::process_kill(peer.process, 0);
            context.check(
                alive.is_ok(),
                &format!("the peer was not running: {alive:?}"),
            );
            outcome
        },
    },
    Case {
        id: "MSG-CONS-026",
        rule: "CONSOLE_LOG from a domain whose io_ports do not cover COM1 (tests) is PM_CONSOLE_DENIED and changes nothing",
        section: "7a.4",
        decisions: &["D46"],
        expect: refusal("CONSOLE_LOG", ProcmanError::ConsoleDenied),
        run: |context| refused_twice(context, || send_bytes(CONSOLE_LOG, &[])),
    },
    Case {
        id: "MSG-CONS-027",
        rule: "KILL of a process the caller did not start (echo, pid 1, started by procman) is PM_NOT_PARENT and changes nothing",
        section: "7a.4",
        decisions: &["D48", "D73"],
        expect: refusal("KILL", ProcmanError::NotParent),
        run: |context| refused_twice(context, || send_bytes(KILL, KillRequest::new(1).as_bytes())),
    },
    Case {
        id: "MSG-CONS-028",
        rule: "KILL of a process the caller started through procman ends it (an empty reply), and WAIT then gives its status KILLED (0xFFFFFFFE)",
        section: "7a.4",
        decisions: &["D48"],
        expect: Expect::replied("KILL", 0, 0, 8, 0),
        run: |context| {
            let (_peer, pid) = context.procman_peer()?;
            let call = send_bytes(KILL, KillRequest::new(pid).as_bytes())?;
            let status = userlib::procman::wait(pid);
            context.check(
                matches!(status, Ok(KILLED)),
                &format!("WAIT after KILL gave {status:?}"),
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-CONS-029",
        rule: "PROCESS_LIST from just below the caller's id lists the caller first: its pid, parent 0 (procman started it), state running, domain tests, program conformance-portals; the reply's data is the header and 80 bytes per entry",
        section: "7a.4",
        decisions: &[],
        expect: Expect::registers("PROCESS_LIST", 0, 0, 0, 0).with_arg3_var("list sizes"),
        run: |context| {
            let own = kernel::process_id()? as u32;
            // Room for the most entries a reply carries.
            let call = kit::send(
                PROCESS_LIST,
                Descriptor::NULL,
                ProcessListRequest::new(own.saturating_sub(1)).as_bytes(),
                &[],
                4000,
            )?;
            let payload = call.bytes.get(8..).unwrap_or(&[]);
            let header = ProcessListReply::read_from_prefix(payload).map(|(h, _)| h);
            let first = payload
                .get(8..8 + size_of::<ProcessEntry>())
                .and_then(|b| ProcessEntry::read_from_bytes(b).ok());
            let count = header.map_or(0, |h| h.count);
            context.bind(
                "list sizes",
                abi::message::sizes(0, 16 + 80 * count as u16, 0),
            );
            let padded = |text: &[u8], length: usize| {
                let mut field = alloc::vec![0u8; length];
                field[..text.len()].copy_from_slice(text);
                field
            };
            context.check(
                first.is_some_and(|e| {
                    e.pid == own
                        && e.parent == 0
                        && e.state == PROCESS_RUNNING
                        && e.domain[..] == padded(b"tests", 16)[..]
                        && e.name[..] == padded(b"conformance-portals", 48)[..]
                }),
                &format!("the first entry: {first:?}"),
            );
            Ok(context.observe(call.registers))
        },
    },
];

/// A fresh event for LOG_TAKE, the case's.
fn log_event(context: &mut Context) -> Result<Descriptor, Failed> {
    Ok(context.adopt(kernel::event_create()?.into_raw()))
}

/// LOG_TAKE from the runner's machine-control capability, refused and
/// changing nothing.
fn log_take_refused(context: &mut Context, request: LogTakeRequest) -> Outcome {
    kit::refused(
        context,
        KernelFunction::LogTake,
        abi::process::FIRST_MACHINE_CONTROL,
        request.as_bytes(),
    )
}

/// IO_PORT_GRANT by the runner's capability, refused and changing nothing.
fn kernel_refused_grant(context: &mut Context, request: IoPortRequest) -> Outcome {
    kit::refused(
        context,
        KernelFunction::IoPortGrant,
        abi::process::FIRST_MACHINE_CONTROL,
        request.as_bytes(),
    )
}

/// A LOG_READ buffer: the header and `MAX_LOG_READ` bytes of lines.
const LOG_READ_TOTAL: u16 = 16 + MAX_LOG_READ as u16;

/// LOG_READ of `log` offering `total` bytes, as the caller saw it.
fn log_read_call(log: Descriptor, total: u16) -> Result<kit::Call, Failed> {
    kit::send(KernelFunction::LogRead.function(), log, &[], &[], total)
}
