//! MSG-KCALL: kernel functions as messages (ABI.md §1.5, §6, §7, §9 D5):
//! the request's exact size, a buffer that must hold the reply, slots only
//! for SPAWN, reserved request fields, the reply's layout (msgRetVal,
//! msgErrno, payload at 8, new descriptors in slots), the rights of new
//! references, and the kernel capabilities (ABI.md §6 "Targets" and
//! "Capabilities, not privilege", §7): the first process's descriptors 1-3,
//! the capability functions sent to them, to the NULL target, to objects
//! of other kinds and through references without SEND, a process that
//! holds none, and a capability passed on to another process.

use abi::kcall::{
    ArchiveReadRequest, ClockReply, CookieRequest, DescriptorRequest, DoorCreateRequest,
    ExitRequest, MapRequest, SpawnRequest,
};
use abi::process::{FIRST_BOOT_ARCHIVE, FIRST_MACHINE_CONTROL, FIRST_PROCESS_CONTROL};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

use super::kit::{self, SENDER_FILL, info, replied};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value, function_bits, sizes};
use crate::peer::Step;
use userlib::kernel;

mod memory;
mod threads;

/// `function` to `target` with `request` as the data, in a buffer of `total`.
fn kcall(
    context: &Context,
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
    slots: &[DescriptorSlot],
    total: u16,
) -> Outcome {
    let call = kit::send(function.function(), target, request, slots, total)?;
    Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
}

/// DESCRIPTOR_INFO of `descriptor` in a buffer of 64.
fn describe(context: &Context, descriptor: Descriptor) -> Outcome {
    let request = DescriptorRequest::new(descriptor, abi::Rights::NONE);
    kcall(
        context,
        KernelFunction::DescriptorInfo,
        Descriptor::NULL,
        request.as_bytes(),
        &[],
        64,
    )
}

/// DESCRIPTOR_INFO's reply bytes for `kind` and `rights`.
const fn info_reply(kind: ObjectKind, rights: Rights) -> [u8; 16] {
    let kind = (kind as u32).to_le_bytes();
    let rights = rights.0.to_le_bytes();
    [
        0, 0, 0, 0, 0, 0, 0, 0, kind[0], kind[1], kind[2], kind[3], rights[0], rights[1],
        rights[2], rights[3],
    ]
}

const CLIENT_INFO: [u8; 16] = info_reply(ObjectKind::UserDoor, Rights::DOOR_CLIENT);
const EVENT_INFO: [u8; 16] = info_reply(ObjectKind::Event, Rights::EVENT);
const PROCESS_INFO: [u8; 16] = info_reply(ObjectKind::Process, Rights::HANDLE);
const THREAD_INFO: [u8; 16] = info_reply(ObjectKind::Thread, Rights::HANDLE);
const SYSTEM_INFO: [u8; 16] = info_reply(ObjectKind::SystemDoor, Rights::DOOR_CLIENT);
const USER_OWNER_INFO: [u8; 16] = info_reply(ObjectKind::UserDoor, Rights::DOOR_OWNER);
const PEER_CLIENT_INFO: [u8; 16] = info_reply(ObjectKind::UserDoor, Rights::SEND);
const PROCESS_CONTROL_INFO: [u8; 16] = info_reply(ObjectKind::ProcessControl, Rights::CAPABILITY);
const BOOT_ARCHIVE_INFO: [u8; 16] = info_reply(ObjectKind::BootArchive, Rights::CAPABILITY);
const MACHINE_CONTROL_INFO: [u8; 16] = info_reply(ObjectKind::MachineControl, Rights::CAPABILITY);

/// The first bytes of every program in the boot archive (ABI.md §7: a
/// static ELF64 executable): the ELF magic, class 2 (64-bit), data 1
/// (little-endian).
const ELF64_LE: [u8; 6] = [0x7f, b'E', b'L', b'F', 2, 1];

/// DOOR_CREATE's request for a user door.
const USER_DOOR: DoorCreateRequest = DoorCreateRequest::new(false, 0);

/// DEBUG_EXIT's request with a failure code: should a kernel wrongly carry
/// it out, the run ends with a failure.
const EXIT_FAILURE: ExitRequest = ExitRequest::new(1);

/// A capability function sent by the peer, which holds no capability (its
/// descriptors: 1 its control door's owner reference, nothing else), to
/// its descriptor `target` (0: the NULL target).
fn from_peer(
    context: &mut Context,
    function: KernelFunction,
    target: u32,
    request: &[u8],
) -> Outcome {
    let peer = context.peer(&[])?;
    let result = peer.trap(Step::send(function.function(), target, request, &[], 64))?;
    Ok(context.observe(result.registers))
}

/// More of a case's rule, from the peer: `function` to its descriptor
/// `target` must fail with `error`.
fn peer_also(
    context: &mut Context,
    peer: &crate::peer::Peer,
    what: &str,
    (function, target, request): (KernelFunction, u32, &[u8]),
    error: Error,
) -> Result<(), Failed> {
    let result = peer.trap(Step::send(function.function(), target, request, &[], 64))?;
    context.check_registers(what, &result.registers, &TrapArgs::error(error));
    Ok(())
}

/// ARCHIVE_READ's request for `name` from `offset`, the name after it.
fn archive_request(name: &str, offset: u64) -> alloc::vec::Vec<u8> {
    let mut request = alloc::vec::Vec::from(
        ArchiveReadRequest::with_name_length(name.len() as u32, offset).as_bytes(),
    );
    request.extend_from_slice(name.as_bytes());
    request
}

/// SPAWN's request for the peer program, no arguments.
fn spawn_request() -> alloc::vec::Vec<u8> {
    let name = crate::peer::PROGRAM.as_bytes();
    let mut request =
        alloc::vec::Vec::from(SpawnRequest::with_lengths(name.len() as u32, 0).as_bytes());
    request.extend_from_slice(name);
    request
}

/// A descriptor number of the runner that was just closed.
fn closed(context: &mut Context) -> Result<Descriptor, Failed> {
    let event = context.event()?;
    context.close(event)?;
    Ok(event)
}

/// The lowest free descriptor of the runner and the kernel's counts of
/// objects and descriptors before and after `call`: a refused capability
/// function must create nothing, not even an object no table holds.
fn creates_nothing(context: &mut Context, call: impl FnOnce(&Context) -> Outcome) -> Outcome {
    let before = context.lowest_free(1)?;
    let counted_before = userlib::kernel::counters()?;
    let observed = call(&*context);
    let counted_after = userlib::kernel::counters()?;
    let after = context.lowest_free(1)?;
    context.check(
        before == after,
        &alloc::format!(
            "the lowest free descriptor moved from {before:?} to {after:?}: something was created"
        ),
    );
    let counts = |c: &abi::kcall::KernelCounters| (c.objects, c.descriptors);
    context.check(
        counts(&counted_before) == counts(&counted_after),
        &alloc::format!(
            "the kernel's (objects, descriptors) went from {:?} to {:?}: something was created",
            counts(&counted_before),
            counts(&counted_after)
        ),
    );
    observed
}

/// More of a case's rule: `function` to `target` with `request` must fail
/// with `error`.
fn also(
    context: &mut Context,
    what: &str,
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
    error: Error,
) -> Result<(), Failed> {
    let call = kit::send(function.function(), target, request, &[], 64)?;
    context.check_registers(what, &call.registers, &TrapArgs::error(error));
    Ok(())
}

/// Requests that fail on their own should a kernel wrongly get past the
/// target checks (ABI.md §6: those come first), so that a case creates,
/// registers or ends nothing: SPAWN of a program not in the boot archive,
/// MANAGER_REGISTER of descriptor 0, ARCHIVE_READ of a file not there,
/// DEBUG_EXIT with its reserved field set.
mod doomed {
    use super::*;

    pub fn spawn() -> alloc::vec::Vec<u8> {
        let name = b"no-such-program";
        let mut request =
            alloc::vec::Vec::from(SpawnRequest::with_lengths(name.len() as u32, 0).as_bytes());
        request.extend_from_slice(name);
        request
    }

    pub fn manager_register() -> [u8; 8] {
        let mut request = [0; 8];
        request.copy_from_slice(DescriptorRequest::new(Descriptor::NULL, Rights::NONE).as_bytes());
        request
    }

    pub fn archive_read() -> alloc::vec::Vec<u8> {
        archive_request("no-such-file", 0)
    }

    pub fn debug_exit() -> [u8; 8] {
        let mut request = [0; 8];
        request.copy_from_slice(ExitRequest::new(1).with_reserved(1).as_bytes());
        request
    }
}

/// A kernel function (`function`, `target`, `request`, in a buffer of 64)
/// whose reply carries one new reference, which must take the runner's
/// lowest free number: `name` is bound to that number, and the case owns
/// it. The observation (with the buffer) and the number.
fn one_new_reference(
    context: &mut Context,
    name: &'static str,
    (function, target, request): (KernelFunction, Descriptor, &[u8]),
) -> Result<(crate::expect::Observed, Descriptor), Failed> {
    let free = context.lowest_free(1)?;
    let observed = kcall(context, function, target, request, &[], 64);
    let number = Descriptor(free.first().copied().unwrap_or(0));
    context.bind(name, u64::from(number.0));
    context.adopt(number);
    let observed = observed?;
    let observed = context.observe_buffer(observed.registers, observed.msg_ptr, observed.buffer);
    Ok((observed, number))
}

/// DOOR_CREATE's reply: msgRetVal and msgErrno 0, the owner reference
/// and the client reference at the numbers the case binds, nothing after.
const DOOR_CREATED: &[(u16, Field)] = &[
    (0, Field::Bytes(&[0; 8])),
    (
        8,
        Field::Slot {
            descriptor: Value::Var("owner"),
            rights: Rights::DOOR_OWNER.0,
            mode: None,
        },
    ),
    (
        24,
        Field::Slot {
            descriptor: Value::Var("client"),
            rights: Rights::DOOR_CLIENT.0,
            mode: None,
        },
    ),
    (
        40,
        Field::Fill {
            length: 24,
            byte: SENDER_FILL,
        },
    ),
];

/// DOOR_CREATE of a user or a `system` door sent to the process-control
/// capability: `owner` and `client` are bound to the lowest free numbers,
/// and DESCRIPTOR_INFO must name the door's kind through both.
fn door_create(context: &mut Context, system: bool) -> Outcome {
    let free = context.lowest_free(2)?;
    let observed = kcall(
        context,
        KernelFunction::DoorCreate,
        FIRST_PROCESS_CONTROL,
        DoorCreateRequest::new(system, 0).as_bytes(),
        &[],
        64,
    );
    let kind = if system {
        ObjectKind::SystemDoor
    } else {
        ObjectKind::UserDoor
    };
    let rights = [Rights::DOOR_OWNER, Rights::DOOR_CLIENT];
    for ((name, number), rights) in ["owner", "client"].into_iter().zip(free).zip(rights) {
        context.bind(name, u64::from(number));
        context.adopt(Descriptor(number));
        let described = info(Descriptor(number));
        context.check(
            described == Ok((kind as u32, rights.0)),
            &alloc::format!("DESCRIPTOR_INFO of the {name} reference: {described:?}"),
        );
    }
    let observed = observed?;
    Ok(context.observe_buffer(observed.registers, observed.msg_ptr, observed.buffer))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-KCALL-001",
        rule: "a kernel reply is laid out like a server's: DESCRIPTOR_INFO answers msgRetVal 0, msgErrno 0, then kind and rights at offset 8; nothing past its 16 bytes",
        section: "6",
        decisions: &["D5"],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&CLIENT_INFO)),
            (
                16,
                Field::Fill {
                    length: 48,
                    byte: SENDER_FILL,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            describe(context, door.client)
        },
    },
    Case {
        id: "MSG-KCALL-002",
        rule: "a kernel request shorter than its struct (4 of 8 bytes) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("DESCRIPTOR_INFO", Error::BadSizes),
        run: |context| {
            let door = context.user_door()?;
            kcall(
                context,
                KernelFunction::DescriptorInfo,
                Descriptor::NULL,
                &door.client.0.to_le_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-003",
        rule: "a kernel request longer than its struct (12 of 8 bytes) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("DESCRIPTOR_INFO", Error::BadSizes),
        run: |context| {
            let door = context.user_door()?;
            let mut request = alloc::vec::Vec::from(
                DescriptorRequest::new(door.client, abi::Rights::NONE).as_bytes(),
            );
            request.extend_from_slice(&[0; 4]);
            kcall(
                context,
                KernelFunction::DescriptorInfo,
                Descriptor::NULL,
                &request,
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-004",
        rule: "a buffer too small for the kernel's reply (15 for DESCRIPTOR_INFO's 16; 16 for COUNTERS' 56) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("DESCRIPTOR_INFO", Error::BadSizes),
        run: |context| {
            let counters = kit::send(
                KernelFunction::Counters.function(),
                Descriptor::NULL,
                &[],
                &[],
                16,
            )?;
            context.check_registers(
                "COUNTERS into 16 bytes",
                &counters.registers,
                &TrapArgs::error(Error::BadSizes),
            );
            let door = context.user_door()?;
            let request = DescriptorRequest::new(door.client, abi::Rights::NONE);
            kcall(
                context,
                KernelFunction::DescriptorInfo,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                15,
            )
        },
    },
    Case {
        id: "MSG-KCALL-005",
        rule: "a buffer exactly as large as the kernel's reply (16 for DESCRIPTOR_INFO) is enough",
        section: "6",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&CLIENT_INFO))]),
        run: |context| {
            let door = context.user_door()?;
            let request = DescriptorRequest::new(door.client, abi::Rights::NONE);
            kcall(
                context,
                KernelFunction::DescriptorInfo,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                16,
            )
        },
    },
    Case {
        id: "MSG-KCALL-006",
        rule: "DOOR_CREATE replies with two slots: the owner reference (RECEIVE | TRANSFER) and a client reference (SEND | TRANSFER | DUPLICATE), at the lowest free numbers",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied("DOOR_CREATE", 0, 0, 8, 2).with_buffer(DOOR_CREATED),
        run: |context| door_create(context, false),
    },
    Case {
        id: "MSG-KCALL-007",
        rule: "DOOR_CREATE with a buffer one byte short of its reply (39 of 40) is BAD_SIZES and creates nothing (as is EVENT_CREATE into 16 of its 24)",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::BadSizes),
        run: |context| {
            let event = creates_nothing(context, |context| {
                kcall(
                    context,
                    KernelFunction::EventCreate,
                    Descriptor::NULL,
                    &[],
                    &[],
                    16,
                )
            })?;
            context.check_registers(
                "EVENT_CREATE into 16 bytes",
                &event.registers,
                &TrapArgs::error(Error::BadSizes),
            );
            creates_nothing(context, |context| {
                kcall(
                    context,
                    KernelFunction::DoorCreate,
                    FIRST_PROCESS_CONTROL,
                    USER_DOOR.as_bytes(),
                    &[],
                    39,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-008",
        rule: "descriptor slots on a kernel function other than SPAWN (CLOSE) are BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("CLOSE", Error::BadSizes),
        run: |context| {
            let event = context.event()?;
            let request = DescriptorRequest::new(event, abi::Rights::NONE);
            let observed = kcall(
                context,
                KernelFunction::Close,
                Descriptor::NULL,
                request.as_bytes(),
                &[DescriptorSlot::copy(event, Rights::SIGNAL)],
                64,
            );
            context.check(
                info(event).is_ok(),
                "the refused CLOSE closed the descriptor anyway",
            );
            observed
        },
    },
    Case {
        id: "MSG-KCALL-009",
        rule: "a reserved request field not zero (CLOSE's rights) is RESERVED_BITS, and nothing is closed",
        section: "6",
        decisions: &[],
        expect: Expect::error("CLOSE", Error::ReservedBits),
        run: |context| {
            let event = context.event()?;
            let request = DescriptorRequest::new(event, abi::Rights(1));
            let observed = kcall(
                context,
                KernelFunction::Close,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            );
            context.check(
                info(event).is_ok(),
                "the refused CLOSE closed the descriptor anyway",
            );
            observed
        },
    },
    Case {
        id: "MSG-KCALL-010",
        rule: "DUPLICATE with fewer rights replies with one slot holding the copy and exactly the rights asked",
        section: "6",
        decisions: &[],
        expect: Expect::replied("DUPLICATE", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("copy"),
                    rights: Rights::SEND.0,
                    mode: None,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            let request = DescriptorRequest::new(door.client, Rights::SEND);
            let (observed, copy) = one_new_reference(
                context,
                "copy",
                (
                    KernelFunction::Duplicate,
                    Descriptor::NULL,
                    request.as_bytes(),
                ),
            )?;
            let described = info(copy);
            context.check(
                described == Ok((ObjectKind::UserDoor as u32, Rights::SEND.0)),
                &alloc::format!("DESCRIPTOR_INFO of the copy: {described:?}"),
            );
            Ok(observed)
        },
    },
    Case {
        id: "MSG-KCALL-011",
        rule: "DUPLICATE asking for more rights than held is RIGHTS_EXCEEDED",
        section: "6",
        decisions: &[],
        expect: Expect::error("DUPLICATE", Error::RightsExceeded),
        run: |context| {
            let door = context.user_door()?;
            let request =
                DescriptorRequest::new(door.client, Rights::DOOR_CLIENT.union(Rights::SIGNAL));
            kcall(
                context,
                KernelFunction::Duplicate,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-012",
        rule: "DUPLICATE asking for an undefined right (bit 31; bit 6) is RESERVED_BITS",
        section: "1.5",
        decisions: &[],
        expect: Expect::error("DUPLICATE", Error::ReservedBits),
        run: |context| {
            let door = context.user_door()?;
            let six = DescriptorRequest::new(door.client, abi::Rights(1 << 6));
            also(
                context,
                "DUPLICATE asking for bit 6",
                KernelFunction::Duplicate,
                Descriptor::NULL,
                six.as_bytes(),
                Error::ReservedBits,
            )?;
            let request = DescriptorRequest::new(door.client, abi::Rights(1 << 31));
            kcall(
                context,
                KernelFunction::Duplicate,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-013",
        rule: "EVENT_WAIT, sent to the event's descriptor, answers the count left in msgRetVal (2 signals, 1 wait: 1; a second wait: 0)",
        section: "6",
        decisions: &["D5"],
        expect: Expect::replied("EVENT_WAIT", 1, 0, 8, 0)
            .with_buffer(&[(0, Field::Bytes(&[1, 0, 0, 0, 0, 0, 0, 0]))]),
        run: |context| {
            let event = context.event()?;
            for _ in 0..2 {
                let signal = kit::send(KernelFunction::EventSignal.function(), event, &[], &[], 8)?;
                context.check_registers("EVENT_SIGNAL", &signal.registers, &replied(0, 0, 8, 0));
            }
            let observed = kcall(context, KernelFunction::EventWait, event, &[], &[], 64)?;
            if observed.registers == replied(1, 0, 8, 0) {
                let second = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 8)?;
                context.check_registers(
                    "the second EVENT_WAIT",
                    &second.registers,
                    &replied(0, 0, 8, 0),
                );
            }
            Ok(observed)
        },
    },
    Case {
        id: "MSG-KCALL-014",
        rule: "DOOR_CREATE from a process that holds no process-control capability (the peer), sent to the NULL target, is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DOOR_CREATE", Error::FunctionOutOfRange),
        run: |context| from_peer(context, KernelFunction::DoorCreate, 0, USER_DOOR.as_bytes()),
    },
    Case {
        id: "MSG-KCALL-015",
        rule: "SPAWN from a process that holds no process-control capability (the peer), sent to its descriptor 1 (a door's owner reference), is WRONG_OBJECT_TYPE (as are DOOR_CREATE and DEBUG_EXIT sent there)",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's SPAWN", Error::WrongObjectType),
        run: |context| {
            let peer = context.peer(&[])?;
            peer_also(
                context,
                &peer,
                "the peer's DOOR_CREATE to its descriptor 1",
                (KernelFunction::DoorCreate, 1, USER_DOOR.as_bytes()),
                Error::WrongObjectType,
            )?;
            peer_also(
                context,
                &peer,
                "the peer's DEBUG_EXIT to its descriptor 1",
                (KernelFunction::DebugExit, 1, EXIT_FAILURE.as_bytes()),
                Error::WrongObjectType,
            )?;
            let result = peer.trap(Step::send(
                KernelFunction::Spawn.function(),
                1,
                &spawn_request(),
                &[],
                64,
            ))?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-KCALL-016",
        rule: "DEBUG_EXIT from a process that holds no machine-control capability (the peer), sent to the NULL target, is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DEBUG_EXIT", Error::FunctionOutOfRange),
        run: |context| {
            from_peer(
                context,
                KernelFunction::DebugExit,
                0,
                EXIT_FAILURE.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-KCALL-017",
        rule: "SPAWN's slots become the child's descriptors 1..n in slot order with the rights granted (the peer's 1 is its control door; 2 and 3 are the case's)",
        section: "7",
        decisions: &[],
        expect: Expect::replied(
            "the peer's DESCRIPTOR_INFO of its descriptor 3",
            0,
            0,
            16,
            0,
        )
        .with_buffer(&[(0, Field::Bytes(&PEER_CLIENT_INFO))]),
        run: |context| {
            let event = context.event()?;
            let door = context.user_door()?;
            let peer = context.peer(&[
                DescriptorSlot::copy(event, Rights::SIGNAL.union(Rights::TRANSFER)),
                DescriptorSlot::copy(door.client, Rights::SEND),
            ])?;
            let second = kit::peer_info(&peer, 2)?;
            let expected = (
                ObjectKind::Event as u32,
                Rights::SIGNAL.union(Rights::TRANSFER).0,
            );
            context.check(
                second == Ok(expected),
                &alloc::format!("the peer's descriptor 2: {second:?}"),
            );
            let request = DescriptorRequest::new(abi::Descriptor(3), abi::Rights::NONE);
            let result = peer.trap(Step::send(
                KernelFunction::DescriptorInfo.function(),
                0,
                request.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe_buffer(result.registers, result.msg_ptr, result.snapshot))
        },
    },
    Case {
        id: "MSG-KCALL-018",
        rule: "a kernel function whose buffer has no room for the reply (YIELD with total 0) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("YIELD", Error::BadSizes),
        run: |context| {
            let registers = kit::send_raw(KernelFunction::Yield.function().bits(), 0, 0, &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-KCALL-019",
        rule: "a new event's reference holds EVENT = SIGNAL | WAIT | TRANSFER | DUPLICATE",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&EVENT_INFO))]),
        run: |context| {
            let event = context.event()?;
            describe(context, event)
        },
    },
    Case {
        id: "MSG-KCALL-020",
        rule: "a process handle (SPAWN's reply) holds HANDLE = SEND | TRANSFER | DUPLICATE",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&PROCESS_INFO))]),
        run: |context| {
            let peer = context.peer(&[])?;
            describe(context, peer.process)
        },
    },
    Case {
        id: "MSG-KCALL-021",
        rule: "a thread handle (THREAD_CREATE's reply) holds HANDLE = SEND | TRANSFER | DUPLICATE",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&THREAD_INFO))]),
        run: |context| {
            let thread = userlib::spawn_thread(|| {}, 16 * 1024)?;
            let thread = context.adopt(thread.into_raw());
            describe(context, thread)
        },
    },
    Case {
        id: "MSG-KCALL-022",
        rule: "a system door's client reference names a SystemDoor with DOOR_CLIENT rights",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&SYSTEM_INFO))]),
        run: |context| {
            let door = context.door(userlib::kernel::DoorKind::System)?;
            describe(context, door.client)
        },
    },
    Case {
        id: "MSG-KCALL-023",
        rule: "the first process's descriptor 1 is its process-control capability: DESCRIPTOR_INFO says kind 6 with CAPABILITY = SEND | TRANSFER | DUPLICATE",
        section: "7",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO of descriptor 1", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&PROCESS_CONTROL_INFO))]),
        run: |context| describe(context, FIRST_PROCESS_CONTROL),
    },
    Case {
        id: "MSG-KCALL-024",
        rule: "the first process's descriptor 2 is its boot-archive capability: DESCRIPTOR_INFO says kind 7 with CAPABILITY = SEND | TRANSFER | DUPLICATE",
        section: "7",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO of descriptor 2", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&BOOT_ARCHIVE_INFO))]),
        run: |context| describe(context, FIRST_BOOT_ARCHIVE),
    },
    Case {
        id: "MSG-KCALL-025",
        rule: "the first process's descriptor 3 is its machine-control capability: DESCRIPTOR_INFO says kind 8 with CAPABILITY = SEND | TRANSFER | DUPLICATE",
        section: "7",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO of descriptor 3", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&MACHINE_CONTROL_INFO))]),
        run: |context| describe(context, FIRST_MACHINE_CONTROL),
    },
    Case {
        id: "MSG-KCALL-026",
        rule: "DOOR_CREATE sent to the NULL target is FUNCTION_OUT_OF_RANGE even from the first process, which holds the process-control capability, and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::FunctionOutOfRange),
        run: |context| {
            creates_nothing(context, |context| {
                kcall(
                    context,
                    KernelFunction::DoorCreate,
                    Descriptor::NULL,
                    USER_DOOR.as_bytes(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-027",
        rule: "a capability function sent to an object of another kind is WRONG_OBJECT_TYPE: DOOR_CREATE to an event, and nothing is created (as SPAWN to a door, MANAGER_REGISTER to a process handle)",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::WrongObjectType),
        run: |context| {
            let door = context.user_door()?;
            also(
                context,
                "SPAWN to a door's client reference",
                KernelFunction::Spawn,
                door.client,
                &doomed::spawn(),
                Error::WrongObjectType,
            )?;
            let peer = context.peer(&[])?;
            also(
                context,
                "MANAGER_REGISTER to a process handle",
                KernelFunction::ManagerRegister,
                peer.process,
                &doomed::manager_register(),
                Error::WrongObjectType,
            )?;
            let event = context.event()?;
            creates_nothing(context, move |context| {
                kcall(
                    context,
                    KernelFunction::DoorCreate,
                    event,
                    USER_DOOR.as_bytes(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-028",
        rule: "a capability of another kind is the wrong object: ARCHIVE_READ sent to the process-control capability is WRONG_OBJECT_TYPE (as is DOOR_CREATE sent to the machine-control capability)",
        section: "6",
        decisions: &[],
        expect: Expect::error("ARCHIVE_READ", Error::WrongObjectType),
        run: |context| {
            // Of door kind 2: a kernel that went on would refuse it anyway.
            let doomed = DoorCreateRequest::with_kind_number(2, 0);
            also(
                context,
                "DOOR_CREATE to the machine-control capability",
                KernelFunction::DoorCreate,
                FIRST_MACHINE_CONTROL,
                doomed.as_bytes(),
                Error::WrongObjectType,
            )?;
            kcall(
                context,
                KernelFunction::ArchiveRead,
                FIRST_PROCESS_CONTROL,
                &archive_request(crate::peer::PROGRAM, 0),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-029",
        rule: "DEBUG_EXIT sent to the boot-archive capability is WRONG_OBJECT_TYPE, checked before the request (its reserved field is set: a kernel that went on would answer RESERVED_BITS)",
        section: "6",
        decisions: &[],
        expect: Expect::error("DEBUG_EXIT", Error::WrongObjectType),
        run: |context| {
            let request = ExitRequest::new(1).with_reserved(1);
            kcall(
                context,
                KernelFunction::DebugExit,
                FIRST_BOOT_ARCHIVE,
                request.as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-030",
        rule: "PROCESS_SET_COOKIE, a process function, sent to the process-control capability is WRONG_OBJECT_TYPE (it takes a process handle)",
        section: "6",
        decisions: &[],
        expect: Expect::error("PROCESS_SET_COOKIE", Error::WrongObjectType),
        run: |context| {
            kcall(
                context,
                KernelFunction::ProcessSetCookie,
                FIRST_PROCESS_CONTROL,
                CookieRequest::new(1).as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-031",
        rule: "DOOR_CREATE through a DUPLICATE of the process-control capability without SEND (TRANSFER | DUPLICATE) is MISSING_RIGHT, and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::MissingRight),
        run: |context| {
            let reduced = context.duplicate(
                FIRST_PROCESS_CONTROL,
                Rights::TRANSFER.union(Rights::DUPLICATE),
            )?;
            creates_nothing(context, move |context| {
                kcall(
                    context,
                    KernelFunction::DoorCreate,
                    reduced,
                    USER_DOOR.as_bytes(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-032",
        rule: "a capability can be passed on: the peer, given a DUPLICATE of the process-control capability as its descriptor 2, creates a door with DOOR_CREATE sent to it (owner and client at its lowest free numbers, 3 and 4)",
        section: "6",
        decisions: &[],
        expect: Expect::replied("the peer's DOOR_CREATE", 0, 0, 8, 2).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (
                8,
                Field::Slot {
                    descriptor: Value::Is(3),
                    rights: Rights::DOOR_OWNER.0,
                    mode: None,
                },
            ),
            (
                24,
                Field::Slot {
                    descriptor: Value::Is(4),
                    rights: Rights::DOOR_CLIENT.0,
                    mode: None,
                },
            ),
            (
                40,
                Field::Fill {
                    length: 24,
                    byte: 0,
                },
            ),
        ]),
        run: |context| {
            let copy = context.duplicate(FIRST_PROCESS_CONTROL, Rights::CAPABILITY)?;
            let peer = context.peer(&[DescriptorSlot::copy(copy, Rights::CAPABILITY)])?;
            let result = peer.trap(Step::send(
                KernelFunction::DoorCreate.function(),
                2,
                USER_DOOR.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe_buffer(result.registers, result.msg_ptr, result.snapshot))
        },
    },
    Case {
        id: "MSG-KCALL-033",
        rule: "a capability passed in a message keeps its kind and the rights granted: the peer's DESCRIPTOR_INFO of its COPY of the process-control capability (descriptor 2) says kind 6, SEND | TRANSFER | DUPLICATE",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied(
            "the peer's DESCRIPTOR_INFO of its descriptor 2",
            0,
            0,
            16,
            0,
        )
        .with_buffer(&[(0, Field::Bytes(&PROCESS_CONTROL_INFO))]),
        run: |context| {
            let peer = context.peer(&[DescriptorSlot::copy(
                FIRST_PROCESS_CONTROL,
                Rights::CAPABILITY,
            )])?;
            let request = DescriptorRequest::new(abi::Descriptor(2), abi::Rights::NONE);
            let result = peer.trap(Step::send(
                KernelFunction::DescriptorInfo.function(),
                0,
                request.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe_buffer(result.registers, result.msg_ptr, result.snapshot))
        },
    },
    Case {
        id: "MSG-KCALL-034",
        rule: "ARCHIVE_READ from a process that holds no boot-archive capability (the peer), sent to the NULL target, is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's ARCHIVE_READ", Error::FunctionOutOfRange),
        run: |context| {
            from_peer(
                context,
                KernelFunction::ArchiveRead,
                0,
                &archive_request(crate::peer::PROGRAM, 0),
            )
        },
    },
    Case {
        id: "MSG-KCALL-035",
        rule: "MANAGER_REGISTER from a process that holds no process-control capability (the peer), sent to the owner reference it names (its descriptor 1), is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's MANAGER_REGISTER", Error::WrongObjectType),
        run: |context| {
            let request = DescriptorRequest::new(abi::Descriptor(1), abi::Rights::NONE);
            from_peer(
                context,
                KernelFunction::ManagerRegister,
                1,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-KCALL-036",
        rule: "DEBUG_EXIT from a process that holds no machine-control capability (the peer), sent to a descriptor it does not have open (1000), is BAD_DESCRIPTOR (as is SPAWN sent there)",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DEBUG_EXIT", Error::BadDescriptor),
        run: |context| {
            let peer = context.peer(&[])?;
            peer_also(
                context,
                &peer,
                "the peer's SPAWN to descriptor 1000",
                (KernelFunction::Spawn, 1000, &spawn_request()),
                Error::BadDescriptor,
            )?;
            let result = peer.trap(Step::send(
                KernelFunction::DebugExit.function(),
                1000,
                EXIT_FAILURE.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-KCALL-037",
        rule: "the target checks come before the buffer's: ARCHIVE_READ to a closed descriptor with a null msgPtr is BAD_DESCRIPTOR, not BAD_BUFFER",
        section: "6",
        decisions: &[],
        expect: Expect::error("ARCHIVE_READ", Error::BadDescriptor),
        run: |context| {
            let gone = closed(context)?;
            let request = archive_request(crate::peer::PROGRAM, 0);
            let args = TrapArgs {
                arg0: function_bits(KernelFunction::ArchiveRead as i32),
                arg1: u64::from(gone.0),
                arg2: 0,
                arg3: sizes(64, request.len() as u16, 0),
            };
            let registers = userlib::raw::trap_at(args, None)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-KCALL-038",
        rule: "PROCESS_SET_COOKIE sent to the NULL target is FUNCTION_OUT_OF_RANGE (it takes a process handle)",
        section: "6",
        decisions: &[],
        expect: Expect::error("PROCESS_SET_COOKIE", Error::FunctionOutOfRange),
        run: |context| {
            kcall(
                context,
                KernelFunction::ProcessSetCookie,
                Descriptor::NULL,
                CookieRequest::new(1).as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-039",
        rule: "ARCHIVE_READ sent to the boot-archive capability replies msgRetVal 0, msgErrno 0, the file's size, then its bytes from the offset as far as the buffer holds (conformance-peer from 0 in 64 bytes: 48 bytes, an ELF64 little-endian header; from 5 in 40: the 24 bytes from there)",
        section: "6",
        decisions: &[],
        expect: Expect::replied("ARCHIVE_READ", 0, 0, 64, 0).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (8, Field::Quad(Value::Var("size"))),
            (16, Field::Bytes(&ELF64_LE)),
        ]),
        run: |context| {
            let name = crate::peer::PROGRAM;
            let read = kit::send(
                KernelFunction::ArchiveRead.function(),
                FIRST_BOOT_ARCHIVE,
                &archive_request(name, 0),
                &[],
                64,
            )?;
            // `size` is the file's size: reading from one byte before it
            // yields that one byte, from it nothing.
            let size = read.bytes.get(8..16).map_or(0, |bytes| {
                u64::from_le_bytes(core::array::from_fn(|index| bytes[index]))
            });
            context.bind("size", size);
            // And it is the real size: the archive holds a program's
            // loadable part (README, "boot archive"): the ELF header, the
            // program headers and the loadable segments' bytes, no section
            // header table. So the file ends where the last of those ends.
            let header = kit::send(
                KernelFunction::ArchiveRead.function(),
                FIRST_BOOT_ARCHIVE,
                &archive_request(name, 0),
                &[],
                16 + 64 + 8 * 56,
            )?;
            let field = |at: u64, width: u64| {
                let at = 16 + at as usize;
                header
                    .bytes
                    .get(at..at + width as usize)
                    .map_or(0, |bytes| {
                        bytes
                            .iter()
                            .rev()
                            .fold(0u64, |value, byte| value << 8 | u64::from(*byte))
                    })
            };
            // e_phoff, e_phentsize, e_phnum, e_shoff, e_shnum (ELF64); each
            // program header's p_type, p_offset, p_filesz.
            let (phoff, phentsize, phnum) = (field(0x20, 8), field(0x36, 2), field(0x38, 2));
            let end = (0..phnum)
                .map(|index| phoff + index * phentsize)
                .filter(|at| field(*at, 4) == 1)
                .map(|at| field(at + 8, 8) + field(at + 32, 8))
                .fold(phoff + phnum * phentsize, u64::max);
            context.check(
                (field(0x28, 8), field(0x3c, 2)) == (0, 0),
                "the archive's program still has a section header table",
            );
            context.check(
                end == size,
                &alloc::format!(
                    "the size ARCHIVE_READ gave ({size}) is not where the ELF's loadable part ends ({end})"
                ),
            );
            // The request (32 bytes) must fit the 40 too; the reply's
            // header takes 16 of them, which leaves 24 for the file.
            let middle = kit::send(
                KernelFunction::ArchiveRead.function(),
                FIRST_BOOT_ARCHIVE,
                &archive_request(name, 5),
                &[],
                40,
            )?;
            context.check_registers(
                "ARCHIVE_READ from offset 5 into 40 bytes",
                &middle.registers,
                &replied(0, 0, 40, 0),
            );
            context.check(
                middle.bytes.get(16..40) == read.bytes.get(21..45),
                "ARCHIVE_READ from offset 5 did not give the file's bytes from 5 on",
            );
            for (offset, bytes) in [(size.saturating_sub(1), 1u16), (size, 0)] {
                let tail = kit::send(
                    KernelFunction::ArchiveRead.function(),
                    FIRST_BOOT_ARCHIVE,
                    &archive_request(name, offset),
                    &[],
                    64,
                )?;
                context.check_registers(
                    &alloc::format!("ARCHIVE_READ from offset {offset} of {size}"),
                    &tail.registers,
                    &replied(0, 0, 16 + bytes, 0),
                );
            }
            Ok(context.observe_buffer(read.registers, read.msg_ptr, read.bytes))
        },
    },
    Case {
        id: "MSG-KCALL-040",
        rule: "DESCRIPTOR_INFO of a descriptor that is not open (one just closed, and descriptor 0) is BAD_DESCRIPTOR",
        section: "6",
        decisions: &[],
        expect: Expect::error(
            "DESCRIPTOR_INFO of a closed descriptor",
            Error::BadDescriptor,
        ),
        run: |context| {
            let gone = closed(context)?;
            let request = DescriptorRequest::new(Descriptor::NULL, Rights::NONE);
            also(
                context,
                "DESCRIPTOR_INFO of descriptor 0",
                KernelFunction::DescriptorInfo,
                Descriptor::NULL,
                request.as_bytes(),
                Error::BadDescriptor,
            )?;
            describe(context, gone)
        },
    },
    Case {
        id: "MSG-KCALL-041",
        rule: "EVENT_SIGNAL sent to a descriptor that is not open is BAD_DESCRIPTOR",
        section: "6",
        decisions: &[],
        expect: Expect::error("EVENT_SIGNAL", Error::BadDescriptor),
        run: |context| {
            let gone = closed(context)?;
            kcall(context, KernelFunction::EventSignal, gone, &[], &[], 64)
        },
    },
    Case {
        id: "MSG-KCALL-042",
        rule: "DOOR_CREATE sent to a descriptor that is not open is BAD_DESCRIPTOR, and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::BadDescriptor),
        run: |context| {
            let gone = closed(context)?;
            creates_nothing(context, move |context| {
                kcall(
                    context,
                    KernelFunction::DoorCreate,
                    gone,
                    USER_DOOR.as_bytes(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-043",
        rule: "the capability functions sent to the NULL target are FUNCTION_OUT_OF_RANGE even from the first process, which holds every capability: SPAWN (and MANAGER_REGISTER, ARCHIVE_READ, DEBUG_EXIT)",
        section: "6",
        decisions: &[],
        expect: Expect::error("SPAWN", Error::FunctionOutOfRange),
        run: |context| {
            also(
                context,
                "MANAGER_REGISTER to the NULL target",
                KernelFunction::ManagerRegister,
                Descriptor::NULL,
                &doomed::manager_register(),
                Error::FunctionOutOfRange,
            )?;
            also(
                context,
                "ARCHIVE_READ to the NULL target",
                KernelFunction::ArchiveRead,
                Descriptor::NULL,
                &doomed::archive_read(),
                Error::FunctionOutOfRange,
            )?;
            also(
                context,
                "DEBUG_EXIT to the NULL target",
                KernelFunction::DebugExit,
                Descriptor::NULL,
                &doomed::debug_exit(),
                Error::FunctionOutOfRange,
            )?;
            creates_nothing(context, |context| {
                kcall(
                    context,
                    KernelFunction::Spawn,
                    Descriptor::NULL,
                    &doomed::spawn(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-044",
        rule: "SPAWN from a process that holds no process-control capability (the peer), sent to the NULL target, is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's SPAWN", Error::FunctionOutOfRange),
        run: |context| from_peer(context, KernelFunction::Spawn, 0, &spawn_request()),
    },
    Case {
        id: "MSG-KCALL-045",
        rule: "MANAGER_REGISTER from a process that holds no process-control capability (the peer), sent to the NULL target, is FUNCTION_OUT_OF_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's MANAGER_REGISTER", Error::FunctionOutOfRange),
        run: |context| {
            let request = DescriptorRequest::new(abi::Descriptor(1), abi::Rights::NONE);
            from_peer(
                context,
                KernelFunction::ManagerRegister,
                0,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-KCALL-046",
        rule: "a reserved request field not zero: DESCRIPTOR_INFO with rights (SIGNAL) is RESERVED_BITS",
        section: "6",
        decisions: &[],
        expect: Expect::error("DESCRIPTOR_INFO", Error::ReservedBits),
        run: |context| {
            let event = context.event()?;
            let request = DescriptorRequest::new(event, Rights::SIGNAL);
            kcall(
                context,
                KernelFunction::DescriptorInfo,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-047",
        rule: "DEBUG_EXIT sent to the machine-control capability with its reserved field set is RESERVED_BITS, and the machine runs on",
        section: "6",
        decisions: &[],
        expect: Expect::error("DEBUG_EXIT", Error::ReservedBits),
        run: |context| {
            kcall(
                context,
                KernelFunction::DebugExit,
                FIRST_MACHINE_CONTROL,
                &doomed::debug_exit(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-048",
        rule: "a function whose request is empty takes no data: YIELD with 1 byte is BAD_SIZES (and EVENT_CREATE with 8, EVENT_SIGNAL with 4)",
        section: "6",
        decisions: &[],
        expect: Expect::error("YIELD", Error::BadSizes),
        run: |context| {
            let event = context.event()?;
            also(
                context,
                "EVENT_SIGNAL with 4 bytes",
                KernelFunction::EventSignal,
                event,
                &[0; 4],
                Error::BadSizes,
            )?;
            let created = kit::send(
                KernelFunction::EventCreate.function(),
                Descriptor::NULL,
                &[0; 8],
                &[],
                64,
            )?;
            if created.registers.arg0 != 0xffff_ffff
                && let Some(number) = created.bytes.get(8..12)
            {
                let number = u32::from_le_bytes([number[0], number[1], number[2], number[3]]);
                context.adopt(Descriptor(number));
            }
            context.check_registers(
                "EVENT_CREATE with 8 bytes",
                &created.registers,
                &TrapArgs::error(Error::BadSizes),
            );
            kcall(
                context,
                KernelFunction::Yield,
                Descriptor::NULL,
                &[0],
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-049",
        rule: "DUPLICATE in a full descriptor table is TABLE_FULL (the peer's, after FILL_TABLE), and so is EVENT_CREATE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DUPLICATE", Error::TableFull),
        run: |context| {
            let event = context.event()?;
            // The peer: 1 its control door, 2 a copy of the event.
            let peer = context.peer(&[DescriptorSlot::copy(event, Rights::EVENT)])?;
            peer.fill_table(0)?;
            let created = peer.trap(Step::send(
                KernelFunction::EventCreate.function(),
                0,
                &[],
                &[],
                64,
            ))?;
            context.check_registers(
                "the peer's EVENT_CREATE",
                &created.registers,
                &TrapArgs::error(Error::TableFull),
            );
            let request = DescriptorRequest::new(abi::Descriptor(2), Rights::EVENT);
            let result = peer.trap(Step::send(
                KernelFunction::Duplicate.function(),
                0,
                request.as_bytes(),
                &[],
                64,
            ))?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-KCALL-050",
        rule: "CLOSE closes once (msgRetVal 0, msgErrno 0, 8 bytes): CLOSE of the same number again is BAD_DESCRIPTOR, as is CLOSE of descriptor 0",
        section: "6",
        decisions: &[],
        expect: Expect::error("the second CLOSE", Error::BadDescriptor),
        run: |context| {
            let event = context.event()?;
            let request = DescriptorRequest::new(event, Rights::NONE);
            let first = kcall(
                context,
                KernelFunction::Close,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            context.check_registers("the first CLOSE", &first.registers, &replied(0, 0, 8, 0));
            if first.registers == replied(0, 0, 8, 0) {
                context.forget(event);
            }
            let null = DescriptorRequest::new(Descriptor::NULL, Rights::NONE);
            also(
                context,
                "CLOSE of descriptor 0",
                KernelFunction::Close,
                Descriptor::NULL,
                null.as_bytes(),
                Error::BadDescriptor,
            )?;
            kcall(
                context,
                KernelFunction::Close,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-051",
        rule: "a DUPLICATE names the same object: an EVENT_SIGNAL through the copy wakes an EVENT_WAIT on the original, which answers 0 left",
        section: "6",
        decisions: &[],
        expect: Expect::replied("EVENT_WAIT on the original", 0, 0, 8, 0),
        run: |context| {
            let event = context.event()?;
            let copy = context.duplicate(event, Rights::SIGNAL.union(Rights::WAIT))?;
            userlib::kernel::event_signal(copy)?;
            // On a thread of its own, so that a wait that never ends is
            // seen and ended instead of hanging the case.
            let wait = context
                .job(move || kit::send(KernelFunction::EventWait.function(), event, &[], &[], 8))?;
            context.settle();
            if !wait.finished() {
                context.fail(alloc::string::String::from(
                    "EVENT_WAIT on the original is still blocked after a signal through the copy",
                ));
                userlib::kernel::event_signal(event)?;
            }
            let call = kit::finished(context, &wait, "EVENT_WAIT on the original")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-KCALL-052",
        rule: "the first process starts with rdx = 3 (FIRST_PROCESS_DESCRIPTORS): its three capabilities are its initial descriptors, the last of them descriptor 3",
        section: "7",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO of descriptor 3", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&MACHINE_CONTROL_INFO))]),
        run: |context| {
            let count = crate::runner::initial_descriptors();
            context.check(
                count == abi::process::FIRST_PROCESS_DESCRIPTORS,
                &alloc::format!("the runner started with rdx = {count}, not 3"),
            );
            describe(context, FIRST_MACHINE_CONTROL)
        },
    },
    Case {
        id: "MSG-KCALL-053",
        rule: "a door's owner reference names the door with DOOR_OWNER = RECEIVE | TRANSFER: a user door's is kind 1 (and a system door's kind 2)",
        section: "1.5",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0)
            .with_buffer(&[(0, Field::Bytes(&USER_OWNER_INFO))]),
        run: |context| {
            let system = context.door(userlib::kernel::DoorKind::System)?;
            let described = info(system.owner);
            context.check(
                described == Ok((ObjectKind::SystemDoor as u32, Rights::DOOR_OWNER.0)),
                &alloc::format!(
                    "DESCRIPTOR_INFO of a system door's owner reference: {described:?}"
                ),
            );
            let door = context.user_door()?;
            describe(context, door.owner)
        },
    },
    Case {
        id: "MSG-KCALL-054",
        rule: "THREAD_CREATE with a priority above 31 (32) is INVALID_ARGUMENT, as is one above the caller's (17 from a thread of 16)",
        section: "6",
        decisions: &[],
        expect: Expect::error("THREAD_CREATE", Error::InvalidArgument),
        run: threads::priority,
    },
    Case {
        id: "MSG-KCALL-055",
        rule: "THREAD_CREATE with a stack top not 16-byte aligned (8 off) is INVALID_ARGUMENT",
        section: "6",
        decisions: &[],
        expect: Expect::error("THREAD_CREATE", Error::InvalidArgument),
        run: threads::unaligned_stack,
    },
    Case {
        id: "MSG-KCALL-056",
        rule: "THREAD_CREATE with a stack in the kernel half is INVALID_ARGUMENT, as is an entry in the kernel half or non-canonical",
        section: "6",
        decisions: &[],
        expect: Expect::error("THREAD_CREATE", Error::InvalidArgument),
        run: threads::outside_user_half,
    },
    Case {
        id: "MSG-KCALL-057",
        rule: "YIELD replies msgRetVal 0, msgErrno 0 and 8 bytes of data",
        section: "6",
        decisions: &[],
        expect: Expect::replied("YIELD", 0, 0, 8, 0).with_buffer(&[(0, Field::Bytes(&[0; 8]))]),
        run: |context| {
            kcall(
                context,
                KernelFunction::Yield,
                Descriptor::NULL,
                &[],
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-058",
        rule: "MAP_ANONYMOUS with address 0 replies msgRetVal 0, msgErrno 0, the address: page-aligned, in the user half; the pages read as zero and keep what is written",
        section: "6",
        decisions: &[],
        expect: Expect::replied("MAP_ANONYMOUS", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (8, Field::Quad(Value::Var("address"))),
        ]),
        run: memory::map_anywhere,
    },
    Case {
        id: "MSG-KCALL-059",
        rule: "MAP_ANONYMOUS at a free page-aligned address maps exactly there: the reply's address is the one asked (0x300000000000)",
        section: "6",
        decisions: &[],
        expect: Expect::replied("MAP_ANONYMOUS", 0, 0, 16, 0).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (8, Field::Quad(Value::Is(memory::TEST_REGION))),
        ]),
        run: memory::map_at,
    },
    Case {
        id: "MSG-KCALL-060",
        rule: "MAP_ANONYMOUS over a mapped page is BAD_ADDRESS_RANGE, as is a range that runs into one",
        section: "6",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::BadAddressRange),
        run: memory::map_over_mapped,
    },
    Case {
        id: "MSG-KCALL-061",
        rule: "MAP_ANONYMOUS outside the user half is BAD_ADDRESS_RANGE: in the kernel half (and across the end of the user half, wrapping around)",
        section: "6",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::BadAddressRange),
        run: memory::map_outside,
    },
    Case {
        id: "MSG-KCALL-062",
        rule: "MAP_ANONYMOUS at an unaligned address is INVALID_ARGUMENT, as is an unaligned length (100) or a length of 0",
        section: "6",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::InvalidArgument),
        run: memory::map_unaligned,
    },
    Case {
        id: "MSG-KCALL-063",
        rule: "a protection without READ is INVALID_ARGUMENT (memory is always readable): MAP_ANONYMOUS with none (and with WRITE or EXECUTE alone; PROTECT to none or WRITE)",
        section: "6",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::InvalidArgument),
        run: memory::without_read,
    },
    Case {
        id: "MSG-KCALL-064",
        rule: "MAP_ANONYMOUS with its reserved field set is RESERVED_BITS",
        section: "6",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::ReservedBits),
        run: |context| {
            memory::refused(
                context,
                KernelFunction::MapAnonymous,
                MapRequest::new(0, memory::PAGE, memory::RW).with_reserved(1),
            )
        },
    },
    Case {
        id: "MSG-KCALL-065",
        rule: "a protection bit other than READ, WRITE, EXECUTE is RESERVED_BITS: MAP_ANONYMOUS with bit 3 (and PROTECT with bit 4)",
        section: "6",
        decisions: &[],
        expect: Expect::error("MAP_ANONYMOUS", Error::ReservedBits),
        run: memory::undefined_protection,
    },
    Case {
        id: "MSG-KCALL-066",
        rule: "UNMAP replies msgRetVal 0, msgErrno 0, 8 bytes and skips the pages of its range already unmapped; the range is then no buffer (BAD_BUFFER) and can be mapped again",
        section: "6",
        decisions: &[],
        expect: Expect::replied(
            "UNMAP of two pages, the second already unmapped",
            0,
            0,
            8,
            0,
        ),
        run: memory::unmap,
    },
    Case {
        id: "MSG-KCALL-067",
        rule: "UNMAP with protection bits is RESERVED_BITS, and the page stays mapped",
        section: "6",
        decisions: &[],
        expect: Expect::error("UNMAP", Error::ReservedBits),
        run: memory::unmap_with_protection,
    },
    Case {
        id: "MSG-KCALL-068",
        rule: "UNMAP of a range that is not page-aligned is INVALID_ARGUMENT",
        section: "6",
        decisions: &[],
        expect: Expect::error("UNMAP", Error::InvalidArgument),
        run: |context| {
            memory::call(
                context,
                KernelFunction::Unmap,
                MapRequest::new(memory::TEST_REGION + 1, memory::PAGE, 0),
            )
        },
    },
    Case {
        id: "MSG-KCALL-069",
        rule: "UNMAP of a range in the kernel half is BAD_ADDRESS_RANGE",
        section: "6",
        decisions: &[],
        expect: Expect::error("UNMAP", Error::BadAddressRange),
        run: |context| {
            memory::call(
                context,
                KernelFunction::Unmap,
                MapRequest::new(memory::KERNEL_HALF, memory::PAGE, 0),
            )
        },
    },
    Case {
        id: "MSG-KCALL-070",
        rule: "UNMAP costs what is mapped: one of 48 TiB holding 17 pages a GiB and more apart returns, and frees their frames and the page tables it empties (COUNTERS' free frames as before the pages were mapped)",
        section: "6",
        decisions: &[],
        expect: Expect::replied("UNMAP of the whole range", 0, 0, 8, 0),
        run: memory::unmap_far,
    },
    Case {
        id: "MSG-KCALL-071",
        rule: "PROTECT to READ replies msgRetVal 0, msgErrno 0, 8 bytes and keeps the page's bytes; the page is then no buffer (BAD_BUFFER) until PROTECT makes it writable again",
        section: "6",
        decisions: &[],
        expect: Expect::replied("PROTECT to READ", 0, 0, 8, 0),
        run: memory::protect,
    },
    Case {
        id: "MSG-KCALL-072",
        rule: "PROTECT of a page that is not mapped is BAD_ADDRESS_RANGE, as is a range with one such page",
        section: "6",
        decisions: &[],
        expect: Expect::error("PROTECT", Error::BadAddressRange),
        run: memory::protect_unmapped,
    },
    Case {
        id: "MSG-KCALL-073",
        rule: "a write to a page the process made read-only with PROTECT is a CPU exception that ends the process (the peer's held call fails with PEER_DIED)",
        section: "7",
        decisions: &[],
        expect: Expect::error("the control call held by the peer", Error::PeerDied),
        run: |context| kit::peer_faults(context, crate::peer::fault::WRITE_READ_ONLY),
    },
    Case {
        id: "MSG-KCALL-074",
        rule: "EVENT_CREATE replies msgRetVal 0, msgErrno 0 and one slot: the new event at the lowest free number, with EVENT rights",
        section: "6",
        decisions: &[],
        expect: Expect::replied("EVENT_CREATE", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("event"),
                    rights: Rights::EVENT.0,
                    mode: None,
                },
            ),
        ]),
        run: |context| {
            let (observed, _) = one_new_reference(
                context,
                "event",
                (KernelFunction::EventCreate, Descriptor::NULL, &[]),
            )?;
            Ok(observed)
        },
    },
    Case {
        id: "MSG-KCALL-075",
        rule: "EVENT_WAIT blocks while the count is 0; an EVENT_SIGNAL wakes the longest waiter first, one waiter per signal",
        section: "6.1",
        decisions: &[],
        expect: Expect::replied("the first waiter's EVENT_WAIT", 0, 0, 8, 0),
        run: threads::longest_waiter_first,
    },
    Case {
        id: "MSG-KCALL-076",
        rule: "COUNTERS replies msgRetVal 0, msgErrno 0 and the KernelCounters; an EVENT_CREATE adds one object and one descriptor and charges more, and its CLOSE gives all of it back",
        section: "6",
        decisions: &[],
        expect: Expect::replied("COUNTERS", 0, 0, 56, 0).with_buffer(&[(0, Field::Bytes(&[0; 8]))]),
        run: counters,
    },
    Case {
        id: "MSG-KCALL-077",
        rule: "DEBUG_WRITE of some bytes replies msgRetVal 0, msgErrno 0, 8 bytes",
        section: "6",
        decisions: &[],
        expect: Expect::replied("DEBUG_WRITE", 0, 0, 8, 0),
        run: |context| {
            kcall(
                context,
                KernelFunction::DebugWrite,
                Descriptor::NULL,
                b"conformance: (DEBUG_WRITE reaches the console)\n",
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-078",
        rule: "DOOR_CREATE of a system door (system = 1) replies with two slots naming a SystemDoor: the owner reference (DOOR_OWNER) and a client reference (DOOR_CLIENT), at the lowest free numbers",
        section: "6",
        decisions: &[],
        expect: Expect::replied("DOOR_CREATE", 0, 0, 8, 2).with_buffer(DOOR_CREATED),
        run: |context| door_create(context, true),
    },
    Case {
        id: "MSG-KCALL-079",
        rule: "DOOR_CREATE of a door kind other than 0 (user) and 1 (system), 2, is INVALID_ARGUMENT, and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::InvalidArgument),
        run: |context| {
            creates_nothing(context, |context| {
                kcall(
                    context,
                    KernelFunction::DoorCreate,
                    FIRST_PROCESS_CONTROL,
                    DoorCreateRequest::with_kind_number(2, 0).as_bytes(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-080",
        rule: "SPAWN replies msgRetVal 0, msgErrno 0 and one slot: a handle (HANDLE) that DESCRIPTOR_INFO shows is a process; the child runs with the slot it was given as its descriptor 1",
        section: "6",
        decisions: &[],
        expect: Expect::replied("SPAWN", 0, 0, 8, 1).with_buffer(&[
            (0, Field::Bytes(&[0; 8])),
            (
                8,
                Field::Slot {
                    descriptor: Value::Var("process"),
                    rights: Rights::HANDLE.0,
                    mode: None,
                },
            ),
        ]),
        run: spawn,
    },
    Case {
        id: "MSG-KCALL-081",
        rule: "SPAWN of a program not in the boot archive is INVALID_ARGUMENT (as is an entry that is no executable, system.toml, and arguments over 1024 bytes), and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("SPAWN", Error::InvalidArgument),
        run: |context| {
            let name = crate::peer::PROGRAM.as_bytes();
            let too_long = alloc::vec![b'x'; abi::process::MAX_ARGUMENT_BYTES + 1];
            for (what, name, arguments) in [
                (
                    "an entry that is no executable (system.toml)",
                    &b"system.toml"[..],
                    &[][..],
                ),
                ("1025 argument bytes", name, &too_long[..]),
            ] {
                let mut request = alloc::vec::Vec::from(
                    SpawnRequest::with_lengths(name.len() as u32, arguments.len() as u32)
                        .as_bytes(),
                );
                request.extend_from_slice(name);
                request.extend_from_slice(arguments);
                let call = kit::send(
                    KernelFunction::Spawn.function(),
                    FIRST_PROCESS_CONTROL,
                    &request,
                    &[],
                    kit::MAX,
                )?;
                if call.registers.arg0 != 0xffff_ffff
                    && let Some(number) = call.bytes.get(8..12)
                {
                    let number = u32::from_le_bytes([number[0], number[1], number[2], number[3]]);
                    context.adopt(Descriptor(number));
                }
                context.check_registers(
                    &alloc::format!("SPAWN of {what}"),
                    &call.registers,
                    &TrapArgs::error(Error::InvalidArgument),
                );
            }
            creates_nothing(context, |context| {
                kcall(
                    context,
                    KernelFunction::Spawn,
                    FIRST_PROCESS_CONTROL,
                    &doomed::spawn(),
                    &[],
                    64,
                )
            })
        },
    },
    Case {
        id: "MSG-KCALL-082",
        rule: "ARCHIVE_READ of a name not in the boot archive is INVALID_ARGUMENT",
        section: "6",
        decisions: &[],
        expect: Expect::error("ARCHIVE_READ", Error::InvalidArgument),
        run: |context| {
            kcall(
                context,
                KernelFunction::ArchiveRead,
                FIRST_BOOT_ARCHIVE,
                &archive_request("no-such-file", 0),
                &[],
                64,
            )
        },
    },
    Case {
        id: "MSG-KCALL-083",
        rule: "CLOCK (NULL target, no data) replies ClockReply{ticks, hz, 0}: the timer runs at 100 Hz and the ticks never decrease",
        section: "6",
        decisions: &[],
        expect: Expect::replied("the second CLOCK", 0, 0, 24, 0),
        run: |context| {
            let clock = || {
                kit::send(
                    KernelFunction::Clock.function(),
                    Descriptor::NULL,
                    &[],
                    &[],
                    64,
                )
            };
            let first = clock()?;
            let second = clock()?;
            let reply = |call: &kit::Call| {
                call.bytes
                    .get(8..24)
                    .and_then(|bytes| ClockReply::read_from_bytes(bytes).ok())
                    .unwrap_or_default()
            };
            let (first_reply, second_reply) = (reply(&first), reply(&second));
            context.check_registers("the first CLOCK", &first.registers, &replied(0, 0, 24, 0));
            context.check(
                second_reply.hz == 100 && second_reply.reserved == 0,
                &alloc::format!("CLOCK's rate and reserved word: {second_reply:?}"),
            );
            context.check(
                second_reply.ticks >= first_reply.ticks,
                &alloc::format!("the ticks went back: {first_reply:?}, then {second_reply:?}"),
            );
            Ok(context.observe(second.registers))
        },
    },
    Case {
        id: "MSG-KCALL-084",
        rule: "PROCESS_SET_COOKIE needs SEND on the process handle: a copy without it is MISSING_RIGHT",
        section: "6",
        decisions: &[],
        expect: Expect::error(
            "PROCESS_SET_COOKIE through a handle without SEND",
            Error::MissingRight,
        ),
        run: |context| {
            let peer = context.peer(&[])?;
            let without_send = Rights(Rights::HANDLE.0 & !Rights::SEND.0);
            let copy = userlib::kernel::duplicate(peer.process, without_send)?;
            let copy = context.adopt(copy.into_raw());
            let request = CookieRequest::new(0x5e7);
            let set = kit::send(
                KernelFunction::ProcessSetCookie.function(),
                copy,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(context.observe(set.registers))
        },
    },
    Case {
        id: "MSG-KCALL-085",
        rule: "PROTECT can add WRITE: a page mapped READ alone in a region of its own (its page tables made for a read-only page), then PROTECTed READ | WRITE, takes a write",
        section: "6",
        decisions: &[],
        expect: Expect::replied("PROTECT to READ | WRITE", 0, 0, 8, 0),
        run: |context| {
            // A 512 GiB region nothing else of the runner uses, so every
            // table above the page is made for the read-only mapping.
            let address = memory::TEST_REGION + (1u64 << 39);
            kernel::map_anonymous(address, abi::PAGE_BYTES, abi::kcall::protection::READ)?;
            let registers = kit::send(
                KernelFunction::Protect.function(),
                Descriptor::NULL,
                MapRequest::new(address, abi::PAGE_BYTES, memory::RW).as_bytes(),
                &[],
                64,
            )?
            .registers;
            // Only a kernel that made the page writable lets this through;
            // otherwise the runner faults and the run ends unclean.
            let pages = userlib::raw::RawPages::claim(address, abi::PAGE_BYTES)?;
            let wrote = registers == replied(0, 0, 8, 0) && pages.write(address, &[0x5a]);
            context.check(wrote, "the write after PROTECT was not made");
            kernel::unmap(address, abi::PAGE_BYTES)?;
            Ok(context.observe(registers))
        },
    },
];

/// MSG-KCALL-076: COUNTERS, before and after an event.
fn counters(context: &mut Context) -> Outcome {
    use abi::kcall::{KernelCounters, REPLY_PAYLOAD_OFFSET};
    use userlib::raw::Buffer;
    // A second process, so that there are at least two (settled: it waits
    // for a command, see Context::peer).
    let _peer = context.peer(&[])?;
    // Made first: nothing below may take memory (the heap's growth would
    // be charged) until the last count.
    let mut counting = Buffer::new();
    let mut creating = Buffer::new();
    let mut closing = Buffer::new();
    let mut count = move || {
        let registers = counting.kernel_call(KernelFunction::Counters, Descriptor::NULL, &[], 64);
        let counted = counting.get::<KernelCounters>(REPLY_PAYLOAD_OFFSET);
        let head = counting.get::<[u8; 8]>(0).unwrap_or_default();
        (registers, counted.unwrap_or_default(), head)
    };
    let (registers, before, head) = count();
    let created = creating.kernel_call(KernelFunction::EventCreate, Descriptor::NULL, &[], 64);
    let event = creating
        .slot(8, 0)
        .map_or(Descriptor::NULL, |slot| Descriptor(slot.descriptor));
    let (_, with, _) = count();
    let request = DescriptorRequest::new(event, Rights::NONE);
    let closed = closing.kernel_call(
        KernelFunction::Close,
        Descriptor::NULL,
        request.as_bytes(),
        64,
    );
    let (_, after, _) = count();
    context.check_registers("EVENT_CREATE", &created, &replied(0, 0, 8, 1));
    context.check_registers("its CLOSE", &closed, &replied(0, 0, 8, 0));
    context.check(
        before.processes >= 2
            && before.threads >= before.processes
            && before.objects >= 1
            && before.descriptors >= 1
            && before.charged_bytes > 0
            && before.free_frames > 0,
        &alloc::format!(
            "COUNTERS: {before:?}, not at least 2 processes, a thread each, objects, descriptors, charges and free frames"
        ),
    );
    let counts = |c: &KernelCounters| (c.processes, c.threads, c.objects, c.descriptors);
    let one_more = (
        before.processes,
        before.threads,
        before.objects + 1,
        before.descriptors + 1,
    );
    context.check(
        counts(&with) == one_more,
        &alloc::format!(
            "(processes, threads, objects, descriptors) with the event: {:?}, not {one_more:?}",
            counts(&with)
        ),
    );
    context.check(
        with.charged_bytes > before.charged_bytes,
        &alloc::format!(
            "the charges went from {} to {} with the event, not up",
            before.charged_bytes,
            with.charged_bytes
        ),
    );
    context.check(
        (counts(&after), after.charged_bytes) == (counts(&before), before.charged_bytes),
        &alloc::format!(
            "after the CLOSE (processes, threads, objects, descriptors) and charges are {:?}, not {:?} as before",
            (counts(&after), after.charged_bytes),
            (counts(&before), before.charged_bytes)
        ),
    );
    Ok(context.observe_buffer(registers, 0, head.to_vec()))
}

/// MSG-KCALL-080: SPAWN of a conformance-peer with a control door.
fn spawn(context: &mut Context) -> Outcome {
    let door = userlib::kernel::door_create(userlib::kernel::DoorKind::User, 0)?;
    let owner = door.owner.into_raw();
    let control = context.adopt(door.client.into_raw());
    let observed = kcall(
        context,
        KernelFunction::Spawn,
        FIRST_PROCESS_CONTROL,
        &spawn_request(),
        &[DescriptorSlot::moving(owner, Rights::DOOR_OWNER)],
        64,
    );
    let observed = observed?;
    // Which number the handle takes depends on when the moved owner
    // reference left (ABI.md does not say): the slot names it.
    let process = observed.buffer.get(8..12).map_or(0, |number| {
        u32::from_le_bytes([number[0], number[1], number[2], number[3]])
    });
    context.bind("process", u64::from(process));
    if observed.registers == replied(0, 0, 8, 1) {
        let described = info(Descriptor(process));
        context.check(
            described == Ok((ObjectKind::Process as u32, Rights::HANDLE.0)),
            &alloc::format!("DESCRIPTOR_INFO of the handle: {described:?}"),
        );
        context.forget(control);
        let peer = context.adopt_peer(control, Descriptor(process));
        let described = kit::peer_info(&peer, 1)?;
        context.check(
            described == Ok((ObjectKind::UserDoor as u32, Rights::DOOR_OWNER.0)),
            &alloc::format!("the child's descriptor 1 (its control door): {described:?}"),
        );
    } else {
        // The move did not happen: the owner reference is still here.
        context.adopt(owner);
    }
    Ok(context.observe_buffer(observed.registers, observed.msg_ptr, observed.buffer))
}
