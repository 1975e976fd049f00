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
    ExitRequest, SpawnRequest,
};
use abi::process::{FIRST_BOOT_ARCHIVE, FIRST_MACHINE_CONTROL, FIRST_PROCESS_CONTROL};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

use super::kit::{self, SENDER_FILL, info, replied};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, Value, function_bits, sizes};
use crate::peer::Step;

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
        rule: "a buffer too small for the kernel's reply (15 for DESCRIPTOR_INFO's 16) is BAD_SIZES",
        section: "6",
        decisions: &[],
        expect: Expect::error("DESCRIPTOR_INFO", Error::BadSizes),
        run: |context| {
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
        expect: Expect::replied("DOOR_CREATE", 0, 0, 8, 2).with_buffer(&[
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
        ]),
        run: |context| {
            let free = context.lowest_free(2)?;
            let observed = kcall(
                context,
                KernelFunction::DoorCreate,
                FIRST_PROCESS_CONTROL,
                USER_DOOR.as_bytes(),
                &[],
                64,
            );
            for (name, number) in ["owner", "client"].into_iter().zip(free) {
                context.bind(name, u64::from(number));
                context.adopt(Descriptor(number));
            }
            let observed = observed?;
            Ok(context.observe_buffer(observed.registers, observed.msg_ptr, observed.buffer))
        },
    },
    Case {
        id: "MSG-KCALL-007",
        rule: "DOOR_CREATE with a buffer one byte short of its reply (39 of 40) is BAD_SIZES and creates nothing",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::BadSizes),
        run: |context| {
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
            let free = context.lowest_free(1)?;
            let request = DescriptorRequest::new(door.client, Rights::SEND);
            let observed = kcall(
                context,
                KernelFunction::Duplicate,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            );
            if let Some(number) = free.first() {
                context.bind("copy", u64::from(*number));
                context.adopt(Descriptor(*number));
                let described = info(Descriptor(*number));
                context.check(
                    described == Ok((ObjectKind::UserDoor as u32, Rights::SEND.0)),
                    &alloc::format!("DESCRIPTOR_INFO of the copy: {described:?}"),
                );
            }
            let observed = observed?;
            Ok(context.observe_buffer(observed.registers, observed.msg_ptr, observed.buffer))
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
        rule: "DUPLICATE asking for an undefined right (bit 31) is RESERVED_BITS",
        section: "1.5",
        decisions: &[],
        expect: Expect::error("DUPLICATE", Error::ReservedBits),
        run: |context| {
            let door = context.user_door()?;
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
        rule: "EVENT_WAIT, sent to the event's descriptor, answers the count left in msgRetVal (2 signals, 1 wait: 1)",
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
            kcall(context, KernelFunction::EventWait, event, &[], &[], 64)
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
        rule: "SPAWN from a process that holds no process-control capability (the peer), sent to its descriptor 1 (a door's owner reference), is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's SPAWN", Error::WrongObjectType),
        run: |context| from_peer(context, KernelFunction::Spawn, 1, &spawn_request()),
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
        rule: "a capability function sent to an object of another kind is WRONG_OBJECT_TYPE: DOOR_CREATE to an event, and nothing is created",
        section: "6",
        decisions: &[],
        expect: Expect::error("DOOR_CREATE", Error::WrongObjectType),
        run: |context| {
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
        rule: "a capability of another kind is the wrong object: ARCHIVE_READ sent to the process-control capability is WRONG_OBJECT_TYPE",
        section: "6",
        decisions: &[],
        expect: Expect::error("ARCHIVE_READ", Error::WrongObjectType),
        run: |context| {
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
        rule: "DEBUG_EXIT from a process that holds no machine-control capability (the peer), sent to a descriptor it does not have open (1000), is BAD_DESCRIPTOR",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DEBUG_EXIT", Error::BadDescriptor),
        run: |context| {
            from_peer(
                context,
                KernelFunction::DebugExit,
                1000,
                EXIT_FAILURE.as_bytes(),
            )
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
        rule: "ARCHIVE_READ sent to the boot-archive capability replies msgRetVal 0, msgErrno 0, the file's size, then its bytes from the offset as far as the buffer holds (conformance-peer from 0 in 64 bytes: 48 bytes, an ELF64 little-endian header)",
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
            // And it is the real size: the linker puts the section header
            // table last, so the ELF header (read whole here) says where
            // the file ends.
            let header = kit::send(
                KernelFunction::ArchiveRead.function(),
                FIRST_BOOT_ARCHIVE,
                &archive_request(name, 0),
                &[],
                16 + 64,
            )?;
            let field = |at: usize, width: usize| {
                header
                    .bytes
                    .get(16 + at..16 + at + width)
                    .map_or(0, |bytes| {
                        bytes
                            .iter()
                            .rev()
                            .fold(0u64, |value, byte| value << 8 | u64::from(*byte))
                    })
            };
            // e_shoff, e_shentsize, e_shnum (ELF64).
            let end = field(0x28, 8) + field(0x3a, 2) * field(0x3c, 2);
            context.check(
                end == size,
                &alloc::format!(
                    "the size ARCHIVE_READ gave ({size}) is not where the ELF's section headers end ({end})"
                ),
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
        id: "MSG-KCALL-041",
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
];
