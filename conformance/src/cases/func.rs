//! MSG-FUNC: function numbers against each kind of target (ABI.md §2,
//! §4.1 steps 3-8, §6): the kernel, process-manager, system and user
//! ranges, -1 and the other negatives, sent to the NULL target, user and
//! system doors, events, thread and process handles and closed
//! descriptors; and the order in which those checks apply.
//!
//! Refusals go to *dead* doors (owner reference closed) where the check
//! comes before step 11, so that a kernel that let the call through answers
//! PEER_DIED instead of leaving the case waiting.

use abi::function::{Function, PROCESS_MANAGER_BASE, SYSTEM_BASE, USER_BASE};
use abi::kcall::DescriptorRequest;
use abi::{Descriptor, Error, KernelFunction, Rights, TrapArgs};
use userlib::kernel::DoorKind;
use zerocopy::IntoBytes;

use super::kit::{self, Answer, MAX, SENDER_FILL, server};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, function_bits, sizes};

/// SEND `arg0` to `target` with no data in a 16-byte buffer.
fn refuse(context: &Context, arg0: u64, target: Descriptor) -> Outcome {
    let registers = kit::send_raw(arg0, u64::from(target.0), sizes(16, 0, 0), &[])?;
    Ok(context.observe(registers))
}

/// `function` sent by a peer (never the process manager, unlike the
/// runner, which may register as one) through a copy of `target`.
fn from_peer(context: &mut Context, function: i32, target: Descriptor) -> Outcome {
    let peer = context.peer(&[abi::DescriptorSlot::copy(target, Rights::SEND)])?;
    let result = peer.trap(crate::peer::Step::send(Function(function), 2, &[], &[], 16))?;
    Ok(context.observe(result.registers))
}

/// A descriptor number that was just closed.
fn closed(context: &mut Context) -> Result<Descriptor, crate::context::Failed> {
    let event = context.event()?;
    context.close(event)?;
    Ok(event)
}

/// A kernel function that names descriptor 1024 (never open in the runner),
/// so that a kernel running it anyway fails with BAD_DESCRIPTOR.
fn kernel_request(context: &Context, function: KernelFunction, target: Descriptor) -> Outcome {
    let request = DescriptorRequest::new(
        abi::Descriptor(abi::descriptor::MAX_DESCRIPTORS),
        abi::Rights::NONE,
    );
    let registers = kit::send_raw(
        function_bits(function as i32),
        u64::from(target.0),
        sizes(64, 8, 0),
        request.as_bytes(),
    )?;
    Ok(context.observe(registers))
}

/// `function` to a live door of `kind`: the server's RECEIVE.
fn delivered(context: &mut Context, kind: DoorKind, function: i32) -> Outcome {
    let door = context.door(kind)?;
    let (call, served) = kit::round_trip(
        context,
        door,
        Function(function),
        b"abc",
        16,
        Answer::default(),
    )?;
    context.check_registers(
        "the caller's SEND",
        &call.registers,
        &kit::replied(0, 0, 0, 0),
    );
    Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
}

const ABC: &[(u16, Field)] = &[(0, Field::Bytes(b"abc"))];

/// More of the same rule: SEND `arg0` to each of `targets` (no data, a
/// 16-byte buffer) must fail with `error`.
fn also(
    context: &mut Context,
    arg0: u64,
    targets: &[Descriptor],
    error: Error,
) -> Result<(), Failed> {
    for target in targets {
        let registers = kit::send_raw(arg0, u64::from(target.0), sizes(16, 0, 0), &[])?;
        context.check_registers(
            &alloc::format!("SEND of {arg0:#x} to descriptor {}", target.0),
            &registers,
            &TrapArgs::error(error),
        );
    }
    Ok(())
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-FUNC-001",
        rule: "function -1 to the NULL target is INVALID_FUNCTION",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| refuse(context, function_bits(-1), Descriptor::NULL),
    },
    Case {
        id: "MSG-FUNC-002",
        rule: "function -1 to a user door is INVALID_FUNCTION (step 3, before the target is looked at)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            refuse(context, function_bits(-1), client)
        },
    },
    Case {
        id: "MSG-FUNC-003",
        rule: "a negative function other than -1 (0x80000000) to a user door is INVALID_FUNCTION",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            refuse(context, function_bits(i32::MIN), client)
        },
    },
    Case {
        id: "MSG-FUNC-004",
        rule: "function -1 to a closed descriptor is INVALID_FUNCTION (step 3 before step 5)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| {
            let gone = closed(context)?;
            refuse(context, function_bits(-1), gone)
        },
    },
    Case {
        id: "MSG-FUNC-005",
        rule: "kernel number 0 is unused: INVALID_FUNCTION",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| refuse(context, function_bits(0), Descriptor::NULL),
    },
    Case {
        id: "MSG-FUNC-006",
        rule: "kernel number 0x3FF (the last of the range, unused) is INVALID_FUNCTION",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| {
            refuse(
                context,
                function_bits(PROCESS_MANAGER_BASE - 1),
                Descriptor::NULL,
            )
        },
    },
    Case {
        id: "MSG-FUNC-007",
        rule: "an unused kernel number between two defined ones (0x013) is INVALID_FUNCTION",
        section: "6",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| {
            refuse(
                context,
                function_bits(KernelFunction::DescriptorInfo as i32 + 1),
                Descriptor::NULL,
            )
        },
    },
    Case {
        id: "MSG-FUNC-008",
        rule: "a kernel function that takes the NULL target (CLOSE) sent to a user door is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            kernel_request(context, KernelFunction::Close, client)
        },
    },
    Case {
        id: "MSG-FUNC-009",
        rule: "CLOSE sent to an event descriptor is FUNCTION_OUT_OF_RANGE (CLOSE takes the NULL target; only the event, process and capability functions take an object)",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let event = context.event()?;
            kernel_request(context, KernelFunction::Close, event)
        },
    },
    Case {
        id: "MSG-FUNC-010",
        rule: "EVENT_SIGNAL to the NULL target is FUNCTION_OUT_OF_RANGE (it takes the event's descriptor)",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            refuse(
                context,
                function_bits(KernelFunction::EventSignal as i32),
                Descriptor::NULL,
            )
        },
    },
    Case {
        id: "MSG-FUNC-011",
        rule: "a system number (0x1000) to the NULL target is FUNCTION_OUT_OF_RANGE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| refuse(context, function_bits(SYSTEM_BASE), Descriptor::NULL),
    },
    Case {
        id: "MSG-FUNC-012",
        rule: "a user number (0x8000) to the NULL target is FUNCTION_OUT_OF_RANGE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| refuse(context, function_bits(USER_BASE), Descriptor::NULL),
    },
    Case {
        id: "MSG-FUNC-013",
        rule: "the largest user number (0x7FFFFFFF) to the NULL target is FUNCTION_OUT_OF_RANGE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| refuse(context, function_bits(i32::MAX), Descriptor::NULL),
    },
    Case {
        id: "MSG-FUNC-014",
        rule: "a system number (0x1000) to a user door is FUNCTION_OUT_OF_RANGE",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            refuse(context, function_bits(SYSTEM_BASE), client)
        },
    },
    Case {
        id: "MSG-FUNC-015",
        rule: "the last system number (0x7FFF) to a user door is FUNCTION_OUT_OF_RANGE",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            refuse(context, function_bits(USER_BASE - 1), client)
        },
    },
    Case {
        id: "MSG-FUNC-016",
        rule: "a user number (0x8000) to a system door is FUNCTION_OUT_OF_RANGE",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::System)?;
            refuse(context, function_bits(USER_BASE), client)
        },
    },
    Case {
        id: "MSG-FUNC-017",
        rule: "the largest user number (0x7FFFFFFF) to a system door is FUNCTION_OUT_OF_RANGE",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::System)?;
            refuse(context, function_bits(i32::MAX), client)
        },
    },
    Case {
        id: "MSG-FUNC-018",
        rule: "a process-manager number (0x400) to a user door, from a process that is not the process manager, is FUNCTION_OUT_OF_RANGE",
        section: "2",
        decisions: &["D6"],
        expect: Expect::error("the peer's SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            from_peer(context, PROCESS_MANAGER_BASE, client)
        },
    },
    Case {
        id: "MSG-FUNC-019",
        rule: "the last process-manager number (0xFFF) to a system door, from a process that is not the process manager, is FUNCTION_OUT_OF_RANGE",
        section: "2",
        decisions: &["D6"],
        expect: Expect::error("the peer's SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::System)?;
            from_peer(context, SYSTEM_BASE - 1, client)
        },
    },
    Case {
        id: "MSG-FUNC-020",
        rule: "the first user number (0x8000) to a user door is delivered with arg0 = 0x8000",
        section: "2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(16, 3, 0))
            .with_buffer(ABC),
        run: |context| delivered(context, DoorKind::User, USER_BASE),
    },
    Case {
        id: "MSG-FUNC-021",
        rule: "the largest user number (0x7FFFFFFF) to a user door is delivered with arg0 = 0x7FFFFFFF",
        section: "2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", i32::MAX, 0, sizes(16, 3, 0))
            .with_buffer(ABC),
        run: |context| delivered(context, DoorKind::User, i32::MAX),
    },
    Case {
        id: "MSG-FUNC-022",
        rule: "the first system number (0x1000) to a system door is delivered with arg0 = 0x1000",
        section: "2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", SYSTEM_BASE, 0, sizes(16, 3, 0))
            .with_buffer(ABC),
        run: |context| delivered(context, DoorKind::System, SYSTEM_BASE),
    },
    Case {
        id: "MSG-FUNC-023",
        rule: "the last system number (0x7FFF) to a system door is delivered with arg0 = 0x7FFF",
        section: "2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE - 1, 0, sizes(16, 3, 0))
            .with_buffer(ABC),
        run: |context| delivered(context, DoorKind::System, USER_BASE - 1),
    },
    Case {
        id: "MSG-FUNC-024",
        rule: "a user number to an event descriptor is WRONG_OBJECT_TYPE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            refuse(context, function_bits(USER_BASE), event)
        },
    },
    Case {
        id: "MSG-FUNC-025",
        rule: "a user number to a thread handle is WRONG_OBJECT_TYPE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::WrongObjectType),
        run: |context| {
            let thread = userlib::spawn_thread(|| {}, 16 * 1024)?;
            let thread = context.adopt(thread.into_raw());
            refuse(context, function_bits(USER_BASE), thread)
        },
    },
    Case {
        id: "MSG-FUNC-026",
        rule: "a user number to a process handle is WRONG_OBJECT_TYPE",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::WrongObjectType),
        run: |context| {
            let peer = context.peer(&[])?;
            refuse(context, function_bits(USER_BASE), peer.process)
        },
    },
    Case {
        id: "MSG-FUNC-027",
        rule: "a user number to a closed descriptor is BAD_DESCRIPTOR (as to descriptor 1000, never opened)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            also(
                context,
                function_bits(USER_BASE),
                &[Descriptor(1000)],
                Error::BadDescriptor,
            )?;
            let gone = closed(context)?;
            refuse(context, function_bits(USER_BASE), gone)
        },
    },
    Case {
        id: "MSG-FUNC-028",
        rule: "descriptor 1025, one past MAX_DESCRIPTORS, is BAD_DESCRIPTOR",
        section: "1.4",
        decisions: &["D4"],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            refuse(
                context,
                function_bits(USER_BASE),
                Descriptor(abi::descriptor::MAX_DESCRIPTORS + 1),
            )
        },
    },
    Case {
        id: "MSG-FUNC-029",
        rule: "descriptor 0xFFFFFFFF is BAD_DESCRIPTOR",
        section: "1.4",
        decisions: &["D4"],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| refuse(context, function_bits(USER_BASE), Descriptor(u32::MAX)),
    },
    Case {
        id: "MSG-FUNC-030",
        rule: "a user number through a door's owner reference (RECEIVE | TRANSFER, no SEND) is MISSING_RIGHT",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::MissingRight),
        run: |context| {
            let door = context.user_door()?;
            // Would answer a call that wrongly got through.
            let _server = server(context, door.owner, MAX, Some(Answer::default()))?;
            context.settle();
            refuse(context, function_bits(USER_BASE), door.owner)
        },
    },
    Case {
        id: "MSG-FUNC-031",
        rule: "a user number through a client reference reduced to TRANSFER is MISSING_RIGHT",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::MissingRight),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let reduced = context.duplicate(client, Rights::TRANSFER)?;
            refuse(context, function_bits(USER_BASE), reduced)
        },
    },
    Case {
        id: "MSG-FUNC-032",
        rule: "out of range and without SEND is FUNCTION_OUT_OF_RANGE (step 7 before step 8)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let reduced = context.duplicate(client, Rights::TRANSFER)?;
            refuse(context, function_bits(SYSTEM_BASE), reduced)
        },
    },
    Case {
        id: "MSG-FUNC-033",
        rule: "a system number to an event is WRONG_OBJECT_TYPE (step 6 before step 7)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            refuse(context, function_bits(SYSTEM_BASE), event)
        },
    },
    Case {
        id: "MSG-FUNC-034",
        rule: "function -1 with data larger than the total is BAD_SIZES (step 2 before step 3)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| {
            let registers = kit::send_raw(function_bits(-1), 0, sizes(0, 1, 0), &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-FUNC-035",
        rule: "without SEND and with a null buffer is MISSING_RIGHT (step 8 before step 9)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::MissingRight),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let reduced = context.duplicate(client, Rights::TRANSFER)?;
            let args = TrapArgs {
                arg0: function_bits(USER_BASE),
                arg1: u64::from(reduced.0),
                arg2: 0,
                arg3: sizes(16, 0, 0),
            };
            let registers = userlib::raw::trap_at(args, None)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-FUNC-036",
        rule: "a system number to a closed descriptor is BAD_DESCRIPTOR (step 5 before steps 6 and 7)",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadDescriptor),
        run: |context| {
            let gone = closed(context)?;
            refuse(context, function_bits(SYSTEM_BASE), gone)
        },
    },
    Case {
        id: "MSG-FUNC-037",
        rule: "EVENT_SIGNAL to a door is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::WrongObjectType),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            refuse(
                context,
                function_bits(KernelFunction::EventSignal as i32),
                client,
            )
        },
    },
    Case {
        id: "MSG-FUNC-038",
        rule: "EVENT_SIGNAL through an event reference without SIGNAL is MISSING_RIGHT",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::MissingRight),
        run: |context| {
            let event = context.event()?;
            let waiter = context.duplicate(event, Rights::WAIT.union(Rights::TRANSFER))?;
            refuse(
                context,
                function_bits(KernelFunction::EventSignal as i32),
                waiter,
            )
        },
    },
    Case {
        id: "MSG-FUNC-039",
        rule: "EVENT_SIGNAL to its event completes like a server reply: msgRetVal 0, msgErrno 0, 8 bytes of data, nothing written past them",
        section: "6",
        decisions: &["D5"],
        expect: Expect::replied("SEND", 0, 0, 8, 0).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (
                8,
                Field::Fill {
                    length: 8,
                    byte: SENDER_FILL,
                },
            ),
        ]),
        run: |context| {
            let event = context.event()?;
            let call = kit::send(
                Function(KernelFunction::EventSignal as i32),
                event,
                &[],
                &[],
                16,
            )?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-FUNC-040",
        rule: "EVENT_WAIT to the NULL target is FUNCTION_OUT_OF_RANGE (it takes the event's descriptor)",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            refuse(
                context,
                function_bits(KernelFunction::EventWait as i32),
                Descriptor::NULL,
            )
        },
    },
    Case {
        id: "MSG-FUNC-041",
        rule: "YIELD, which takes the NULL target, sent to an event is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::FunctionOutOfRange),
        run: |context| {
            let event = context.event()?;
            refuse(context, function_bits(KernelFunction::Yield as i32), event)
        },
    },
    Case {
        id: "MSG-FUNC-042",
        rule: "EVENT_WAIT to a process handle is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::WrongObjectType),
        run: |context| {
            let peer = context.peer(&[])?;
            refuse(
                context,
                function_bits(KernelFunction::EventWait as i32),
                peer.process,
            )
        },
    },
    Case {
        id: "MSG-FUNC-043",
        rule: "EVENT_WAIT through an event reference without WAIT is MISSING_RIGHT, and takes nothing from the count",
        section: "6",
        decisions: &["D5"],
        expect: Expect::error("SEND", Error::MissingRight),
        run: |context| {
            let event = context.event()?;
            // A count of 1: a wait that wrongly got through returns at once.
            userlib::kernel::event_signal(event)?;
            let signaller = context.duplicate(event, Rights::SIGNAL.union(Rights::TRANSFER))?;
            let observed = refuse(
                context,
                function_bits(KernelFunction::EventWait as i32),
                signaller,
            )?;
            if observed.registers == TrapArgs::error(Error::MissingRight) {
                let left = userlib::kernel::event_wait(event);
                context.check(
                    left == Ok(0),
                    &alloc::format!("EVENT_WAIT on the original afterwards: {left:?}, not 0 left"),
                );
            }
            Ok(observed)
        },
    },
    Case {
        id: "MSG-FUNC-044",
        rule: "an unused kernel number is INVALID_FUNCTION whatever the target: 0x004 to a user door (and 0x000, 0x013, 0x024, 0x3FF to it, 0x004 and 0x024 to the NULL target)",
        section: "2",
        decisions: &[],
        expect: Expect::error("SEND of 0x004 to a user door", Error::InvalidFunction),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            for unused in [0x000, 0x013, 0x024, PROCESS_MANAGER_BASE - 1] {
                also(
                    context,
                    function_bits(unused),
                    &[client],
                    Error::InvalidFunction,
                )?;
            }
            for unused in [0x004, 0x024] {
                also(
                    context,
                    function_bits(unused),
                    &[Descriptor::NULL],
                    Error::InvalidFunction,
                )?;
            }
            refuse(context, function_bits(0x004), client)
        },
    },
    Case {
        id: "MSG-FUNC-045",
        rule: "every negative number is INVALID_FUNCTION: 0xFFFFFFFE to the NULL target (and 0x80000000, 0x80008000 to it, 0xFFFFFFFE and 0x80008000 to a user door)",
        section: "2",
        decisions: &[],
        expect: Expect::error(
            "SEND of 0xFFFFFFFE to the NULL target",
            Error::InvalidFunction,
        ),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            for negative in [i32::MIN, i32::MIN + 0x8000] {
                also(
                    context,
                    function_bits(negative),
                    &[Descriptor::NULL],
                    Error::InvalidFunction,
                )?;
            }
            for negative in [-2, i32::MIN + 0x8000] {
                also(
                    context,
                    function_bits(negative),
                    &[client],
                    Error::InvalidFunction,
                )?;
            }
            refuse(context, function_bits(-2), Descriptor::NULL)
        },
    },
];
