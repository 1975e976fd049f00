//! MSG-KCALL: kernel functions as messages (ABI.md §1.5, §6, §9 D5): the
//! request's exact size, a buffer that must hold the reply, slots only for
//! SPAWN, reserved request fields, the reply's layout (msgRetVal, msgErrno,
//! payload at 8, new descriptors in slots), the rights of new references,
//! and the privileged functions refused to other processes.

use abi::kcall::{DescriptorRequest, DoorCreateRequest, ExitRequest, SpawnRequest};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights};
use zerocopy::IntoBytes;

use super::kit::{self, SENDER_FILL, info, replied};
use crate::case::{Case, Outcome};
use crate::context::Context;
use crate::expect::{Expect, Field, Value};
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
    let request = DescriptorRequest {
        descriptor: descriptor.0,
        rights: 0,
    };
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

/// A privileged kernel function tried by an unprivileged peer.
fn unprivileged(context: &mut Context, function: KernelFunction, request: &[u8]) -> Outcome {
    let peer = context.peer(&[])?;
    let result = peer.trap(Step::send(function.function(), 0, request, &[], 64))?;
    Ok(context.observe(result.registers))
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
                DescriptorRequest {
                    descriptor: door.client.0,
                    rights: 0,
                }
                .as_bytes(),
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
            let request = DescriptorRequest {
                descriptor: door.client.0,
                rights: 0,
            };
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
            let request = DescriptorRequest {
                descriptor: door.client.0,
                rights: 0,
            };
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
            let request = DoorCreateRequest {
                system: 0,
                security_type: 0,
            };
            let observed = kcall(
                context,
                KernelFunction::DoorCreate,
                Descriptor::NULL,
                request.as_bytes(),
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
            let before = context.lowest_free(1)?;
            let request = DoorCreateRequest {
                system: 0,
                security_type: 0,
            };
            let observed = kcall(
                context,
                KernelFunction::DoorCreate,
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                39,
            )?;
            let after = context.lowest_free(1)?;
            context.check(before == after, &alloc::format!("the lowest free descriptor moved from {before:?} to {after:?}: something was created"));
            Ok(observed)
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
            let request = DescriptorRequest {
                descriptor: event.0,
                rights: 0,
            };
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
            let request = DescriptorRequest {
                descriptor: event.0,
                rights: 1,
            };
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
            let request = DescriptorRequest {
                descriptor: door.client.0,
                rights: Rights::SEND.0,
            };
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
            let request = DescriptorRequest {
                descriptor: door.client.0,
                rights: Rights::DOOR_CLIENT.union(Rights::SIGNAL).0,
            };
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
            let request = DescriptorRequest {
                descriptor: door.client.0,
                rights: 1 << 31,
            };
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
        rule: "DOOR_CREATE from an unprivileged process is NOT_PERMITTED",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DOOR_CREATE", Error::NotPermitted),
        run: |context| {
            unprivileged(
                context,
                KernelFunction::DoorCreate,
                DoorCreateRequest {
                    system: 0,
                    security_type: 0,
                }
                .as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-KCALL-015",
        rule: "SPAWN from an unprivileged process is NOT_PERMITTED",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's SPAWN", Error::NotPermitted),
        run: |context| {
            let name = crate::peer::PROGRAM.as_bytes();
            let mut request = alloc::vec::Vec::from(
                SpawnRequest {
                    name_length: name.len() as u32,
                    argument_length: 0,
                }
                .as_bytes(),
            );
            request.extend_from_slice(name);
            unprivileged(context, KernelFunction::Spawn, &request)
        },
    },
    Case {
        id: "MSG-KCALL-016",
        rule: "DEBUG_EXIT from an unprivileged process is NOT_PERMITTED",
        section: "6",
        decisions: &[],
        expect: Expect::error("the peer's DEBUG_EXIT", Error::NotPermitted),
        run: |context| {
            unprivileged(
                context,
                KernelFunction::DebugExit,
                ExitRequest {
                    code: 1,
                    reserved: 0,
                }
                .as_bytes(),
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
            let request = DescriptorRequest {
                descriptor: 3,
                rights: 0,
            };
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
            let registers = kit::send_raw(
                crate::raw::function_bits(KernelFunction::Yield.function()),
                0,
                0,
                &[],
            )?;
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
        rule: "a process handle (SPAWN's reply) holds HANDLE = TRANSFER | DUPLICATE",
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
        rule: "a thread handle (THREAD_CREATE's reply) holds HANDLE = TRANSFER | DUPLICATE",
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
];
