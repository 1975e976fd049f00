//! MSG-DEV: devices for user-space drivers (ABI.md §6.3, §9 D17-D19):
//! IO_PORT_GRANT opens I/O ports to one process and to no other, every
//! refusal changes nothing; INTERRUPT_CREATE delivers an ISA line to an
//! event through an interrupt object that acknowledges each delivery
//! (INTERRUPT_ACK) and gives the line back when it goes. The delivery case
//! uses the PIT (line 0): the runner opens its ports to itself, programs a
//! one-shot count, and waits for the event: the wait returns only when the
//! interrupt came, so nothing depends on timing.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use abi::kcall::{InterruptRequest, IoPortRequest};
use abi::{Descriptor, Error, KernelFunction, ObjectKind, Rights};
use userlib::kernel;
use zerocopy::IntoBytes;

use super::kit;
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value};
use crate::peer::fault::{PROBE_PORT, READ_PORT};

/// The PIT: channel 0's data port and the mode/command port.
const PIT_CHANNEL_0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// The PIT's ISA line.
const PIT_LINE: u32 = 0;
/// A line nothing in the suite's machine drives (ISA IRQ 5).
const QUIET_LINE: u32 = 5;

fn grant_request(process: Descriptor, first: u16, count: u16) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(IoPortRequest::new(process, first, count).as_bytes());
    bytes
}

fn interrupt_request(line: u32, event: Descriptor) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(InterruptRequest::new(line, event).as_bytes());
    bytes
}

/// IO_PORT_GRANT from the runner's machine-control capability, refused and
/// changing nothing.
fn grant_refused(context: &mut Context, process: Descriptor, first: u16, count: u16) -> Outcome {
    kit::refused(
        context,
        KernelFunction::IoPortGrant,
        abi::process::FIRST_MACHINE_CONTROL,
        &grant_request(process, first, count),
    )
}

/// INTERRUPT_CREATE from the runner's machine-control capability, refused
/// and changing nothing.
fn interrupt_refused(context: &mut Context, line: u32, event: Descriptor) -> Outcome {
    kit::refused(
        context,
        KernelFunction::InterruptCreate,
        abi::process::FIRST_MACHINE_CONTROL,
        &interrupt_request(line, event),
    )
}

/// A fresh event of the runner's.
fn event(context: &mut Context) -> Result<Descriptor, Failed> {
    Ok(context.adopt(kernel::event_create()?.into_raw()))
}

/// The registers of a peer's READ_PORT after `grants` (ranges given to
/// that peer first).
fn peer_reads_port(context: &mut Context, grants: &[(u16, u16)]) -> Outcome {
    let peer = context.peer(&[])?;
    for (first, count) in grants {
        kernel::io_port_grant(peer.process, *first, *count)?;
    }
    let registers = peer.fault(READ_PORT)?;
    context.settle();
    Ok(context.observe(registers))
}

/// The PIT's channel 0 set to count `count` once (mode 0: interrupt on
/// terminal count).
fn pit_one_shot(count: u16) {
    let [low, high] = count.to_le_bytes();
    userlib::device::write_u8(PIT_COMMAND, 0b0011_0000);
    userlib::device::write_u8(PIT_CHANNEL_0, low);
    userlib::device::write_u8(PIT_CHANNEL_0, high);
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-DEV-001",
        rule: "IO_PORT_GRANT of a port to a process (through its handle) lets it use `in` on that port: it runs on",
        section: "6.3",
        decisions: &["D17"],
        expect: Expect::replied("the peer's READ_PORT", 1, 0, 8, 0),
        run: |context| peer_reads_port(context, &[(PROBE_PORT, 1)]),
    },
    Case {
        id: "MSG-DEV-002",
        rule: "without a grant, `in` from a port faults and the process ends",
        section: "6.3",
        decisions: &["D17"],
        expect: Expect::error("the control call held by the peer", Error::PeerDied),
        run: |context| kit::peer_faults(context, READ_PORT),
    },
    Case {
        id: "MSG-DEV-003",
        rule: "a grant is the process's own: another process reading the same port faults, also right after the granted one ran",
        section: "6.3",
        decisions: &["D17"],
        expect: Expect::error("the second peer's READ_PORT", Error::PeerDied),
        run: |context| {
            let granted = context.peer(&[])?;
            let other = context.peer(&[])?;
            kernel::io_port_grant(granted.process, PROBE_PORT, 1)?;
            let survived = granted.fault(READ_PORT)?;
            context.check_registers(
                "the granted peer's READ_PORT",
                &survived,
                &kit::replied(1, 0, 8, 0),
            );
            let registers = other.fault(READ_PORT)?;
            context.settle();
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-DEV-004",
        rule: "a grant of a range covers every port in it, and grants add up: a second range opens its ports too",
        section: "6.3",
        decisions: &["D17"],
        expect: Expect::replied("the peer's READ_PORT", 1, 0, 8, 0),
        run: |context| peer_reads_port(context, &[(0x70, 2), (PROBE_PORT - 1, 3)]),
    },
    Case {
        id: "MSG-DEV-005",
        rule: "IO_PORT_GRANT of 0 ports is INVALID_ARGUMENT and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::InvalidArgument),
        run: |context| grant_refused(context, Descriptor::NULL, PROBE_PORT, 0),
    },
    Case {
        id: "MSG-DEV-006",
        rule: "IO_PORT_GRANT of a range ending past port 0xFFFF is INVALID_ARGUMENT and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::InvalidArgument),
        run: |context| grant_refused(context, Descriptor::NULL, 0xfff0, 0x11),
    },
    Case {
        id: "MSG-DEV-007",
        rule: "IO_PORT_GRANT of a range touching the kernel console's ports (COM1, 0x3F8-0x3FF) is KERNEL_DEVICE and changes nothing",
        section: "6.3",
        decisions: &["D18"],
        expect: Expect::error("IO_PORT_GRANT", Error::KernelDevice),
        run: |context| grant_refused(context, Descriptor::NULL, 0x3f0, 9),
    },
    Case {
        id: "MSG-DEV-008",
        rule: "IO_PORT_GRANT sent to the process-control capability is WRONG_OBJECT_TYPE and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::WrongObjectType),
        run: |context| {
            kit::refused(
                context,
                KernelFunction::IoPortGrant,
                abi::process::FIRST_PROCESS_CONTROL,
                &grant_request(Descriptor::NULL, PROBE_PORT, 1),
            )
        },
    },
    Case {
        id: "MSG-DEV-009",
        rule: "IO_PORT_GRANT sent to the NULL target is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::FunctionOutOfRange),
        run: |context| {
            kit::refused(
                context,
                KernelFunction::IoPortGrant,
                Descriptor::NULL,
                &grant_request(Descriptor::NULL, PROBE_PORT, 1),
            )
        },
    },
    Case {
        id: "MSG-DEV-010",
        rule: "IO_PORT_GRANT naming an event instead of a process handle is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::WrongObjectType),
        run: |context| {
            let event = event(context)?;
            grant_refused(context, event, PROBE_PORT, 1)
        },
    },
    Case {
        id: "MSG-DEV-011",
        rule: "IO_PORT_GRANT through a process handle without SEND is MISSING_RIGHT and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::MissingRight),
        run: |context| {
            let peer = context.peer(&[])?;
            let weak = context.duplicate(peer.process, Rights::TRANSFER)?;
            grant_refused(context, weak, PROBE_PORT, 1)
        },
    },
    Case {
        id: "MSG-DEV-012",
        rule: "IO_PORT_GRANT naming a descriptor that is not open is BAD_DESCRIPTOR and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::BadDescriptor),
        run: |context| grant_refused(context, Descriptor(999), PROBE_PORT, 1),
    },
    Case {
        id: "MSG-DEV-013",
        rule: "a process holds at most 8 port ranges: a ninth is TABLE_FULL and changes nothing, while a range inside one it holds is accepted",
        section: "6.3",
        decisions: &["D17"],
        expect: Expect::error("the ninth IO_PORT_GRANT", Error::TableFull),
        run: |context| {
            let peer = context.peer(&[])?;
            for port in 0..abi::kcall::MAX_IO_RANGES as u16 {
                kernel::io_port_grant(peer.process, 0x2000 + 2 * port, 1)?;
            }
            let inside = kernel::io_port_grant(peer.process, 0x2000, 1);
            context.check(
                inside.is_ok(),
                &alloc::format!("a range already held was refused: {inside:?}"),
            );
            grant_refused(context, peer.process, 0x3000, 1)
        },
    },
    Case {
        id: "MSG-DEV-014",
        rule: "IO_PORT_GRANT with a request of the wrong size is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("IO_PORT_GRANT", Error::BadSizes),
        run: |context| {
            kit::refused(
                context,
                KernelFunction::IoPortGrant,
                abi::process::FIRST_MACHINE_CONTROL,
                &[0; 4],
            )
        },
    },
    Case {
        id: "MSG-DEV-015",
        rule: "INTERRUPT_CREATE replies one slot: an interrupt object (kind 10) with the INTERRUPT rights",
        section: "6.3",
        decisions: &["D19"],
        expect: Expect::replied("DESCRIPTOR_INFO of the interrupt object", 0, 0, 16, 0)
            .with_buffer(&[
                (8, Field::Word(Value::Is(ObjectKind::Interrupt as u64))),
                (12, Field::Word(Value::Is(Rights::INTERRUPT.0 as u64))),
            ]),
        run: |context| {
            let event = event(context)?;
            let interrupt = context.adopt(kernel::interrupt_create(QUIET_LINE, event)?.into_raw());
            let request = abi::kcall::DescriptorRequest::new(interrupt, Rights::NONE);
            let call = kit::send(
                KernelFunction::DescriptorInfo.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-DEV-016",
        rule: "INTERRUPT_CREATE on a line an interrupt object holds is LINE_TAKEN and changes nothing; once that object is closed the line can be had again",
        section: "6.3",
        decisions: &["D19"],
        expect: Expect::error("the second INTERRUPT_CREATE", Error::LineTaken),
        run: |context| {
            let event = event(context)?;
            let first = kernel::interrupt_create(QUIET_LINE, event)?;
            let outcome = interrupt_refused(context, QUIET_LINE, event)?;
            drop(first);
            let again = kernel::interrupt_create(QUIET_LINE, event);
            context.check(
                again.is_ok(),
                &alloc::format!("after CLOSE the line was still taken: {:?}", again.err()),
            );
            Ok(outcome)
        },
    },
    Case {
        id: "MSG-DEV-017",
        rule: "INTERRUPT_CREATE of line 16 (past the ISA lines) is INVALID_ARGUMENT and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("INTERRUPT_CREATE", Error::InvalidArgument),
        run: |context| {
            let event = event(context)?;
            interrupt_refused(context, abi::kcall::ISA_INTERRUPT_LINES, event)
        },
    },
    Case {
        id: "MSG-DEV-018",
        rule: "INTERRUPT_CREATE naming a door instead of an event is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.3",
        decisions: &[],
        expect: Expect::error("INTERRUPT_CREATE", Error::WrongObjectType),
        run: |context| {
            let door = context.user_door()?;
            interrupt_refused(context, QUIET_LINE, door.client)
        },
    },
    Case {
        id: "MSG-DEV-019",
        rule: "INTERRUPT_CREATE naming an event reference without SIGNAL is MISSING_RIGHT and changes nothing",
        section: "6.3",
        decisions: &["D19"],
        expect: Expect::error("INTERRUPT_CREATE", Error::MissingRight),
        run: |context| {
            let event = event(context)?;
            let waiter = context.duplicate(event, Rights::WAIT)?;
            interrupt_refused(context, QUIET_LINE, waiter)
        },
    },
    Case {
        id: "MSG-DEV-020",
        rule: "INTERRUPT_CREATE sent to the boot-archive capability is WRONG_OBJECT_TYPE and changes nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("INTERRUPT_CREATE", Error::WrongObjectType),
        run: |context| {
            let event = event(context)?;
            kit::refused(
                context,
                KernelFunction::InterruptCreate,
                abi::process::FIRST_BOOT_ARCHIVE,
                &interrupt_request(QUIET_LINE, event),
            )
        },
    },
    Case {
        id: "MSG-DEV-021",
        rule: "INTERRUPT_ACK sent to an event is WRONG_OBJECT_TYPE, and through an interrupt reference without SEND is MISSING_RIGHT",
        section: "6.3",
        decisions: &[],
        expect: Expect::error(
            "INTERRUPT_ACK through a reference without SEND",
            Error::MissingRight,
        ),
        run: |context| {
            let event = event(context)?;
            let wrong = kit::send(KernelFunction::InterruptAck.function(), event, &[], &[], 64)?;
            context.check_registers(
                "INTERRUPT_ACK to an event",
                &wrong.registers,
                &kit::error(Error::WrongObjectType),
            );
            let interrupt = context.adopt(kernel::interrupt_create(QUIET_LINE, event)?.into_raw());
            let weak = context.duplicate(interrupt, Rights::TRANSFER)?;
            kit::refused(context, KernelFunction::InterruptAck, weak, &[])
        },
    },
    Case {
        id: "MSG-DEV-022",
        rule: "an interrupt reaches its holder: the PIT's line 0 firing signals the event once (EVENT_WAIT returns with nothing left), INTERRUPT_ACK answers, and closing the object gives the event's reference back",
        section: "6.3",
        decisions: &["D19"],
        expect: Expect::replied("EVENT_WAIT on the interrupt's event", 0, 0, 8, 0),
        run: |context| {
            kernel::io_port_grant(Descriptor::NULL, PIT_CHANNEL_0, 4)?;
            let event = event(context)?;
            // The system is idle until the device interrupts, which the
            // runner's sentinel would take for a hang: a thread of this
            // case's priority keeps the CPU busy (yielding) until the case
            // is over, or, on the failure path only, for a few seconds.
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
            let before = kernel::counters()?;
            let interrupt = kernel::interrupt_create(PIT_LINE, event)?;
            pit_one_shot(1000);
            let wait = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            let ack = kernel::interrupt_ack(interrupt.descriptor());
            context.check(ack.is_ok(), &alloc::format!("INTERRUPT_ACK: {ack:?}"));
            drop(interrupt);
            let after = kernel::counters()?;
            waiting.store(false, Ordering::Release);
            context.check(
                before == after,
                &alloc::format!(
                    "closing the interrupt object did not give everything back: {before:?} -> {after:?}"
                ),
            );
            Ok(context.observe(wait.registers))
        },
    },
];
