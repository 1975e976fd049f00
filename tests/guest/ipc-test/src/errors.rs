//! Area 3: every error a user program can provoke, each with the exact
//! registers of ABI.md §3 (`-1`, the error, 0, 0). Traps that would hang
//! the test if the kernel wrongly let them through aim at a live helper
//! (which answers) or a door with a call queued on it ([`QueuedCall`]).

use alloc::format;
use alloc::vec::Vec;

use abi::descriptor::MAX_DESCRIPTORS;
use abi::function::{Function, PROCESS_MANAGER_BASE, SYSTEM_BASE, USER_BASE};
use abi::kcall::{
    ArchiveReadRequest, CookieRequest, DescriptorInfo, DoorCreateRequest, ExitRequest, MapRequest,
    REPLY_PAYLOAD_OFFSET, SpawnRequest, protection,
};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::process::{FIRST_BOOT_ARCHIVE, FIRST_MACHINE_CONTROL, FIRST_PROCESS_CONTROL};
use abi::{Descriptor, Error, KernelFunction, Rights, TransferMode, TrapArgs};
use ipc_test_helper::{INSPECT, KEEP, ProbeReport, REPORT, role};
use userlib::OwnedDescriptor;
use userlib::kernel::{self, DoorKind};
use userlib::raw::{self, Buffer, RawPages};
use zerocopy::IntoBytes;

use crate::check::{Check, Outcome, Setup, ensure, expect_eq, expect_error, expect_registers};
use crate::fixture::{
    Fixture, PAGE, QueuedCall, SCRATCH_CALL, ScratchDoor, descriptor_request, duplicate, event,
    info, kcall, spawn_caller, spawn_helper, spawn_server, spawn_worker,
};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "BAD_DESCRIPTOR: SEND, RECEIVE, DESCRIPTOR_INFO, EVENT_SIGNAL and DOOR_CREATE on descriptors that are not open",
        run: bad_descriptor,
    },
    Check {
        name: "WRONG_OBJECT_TYPE: door functions on events and handles, RECEIVE on an event, event functions on a door, capability functions on other objects and capabilities",
        run: wrong_object_type,
    },
    Check {
        name: "FUNCTION_OUT_OF_RANGE: system and process-manager numbers on a user door, user numbers on a system door",
        run: out_of_range_on_doors,
    },
    Check {
        name: "FUNCTION_OUT_OF_RANGE: kernel numbers on an object, door numbers and event, process and capability functions on NULL",
        run: out_of_range_kernel,
    },
    Check {
        name: "INVALID_FUNCTION: -1, other negative numbers, unused kernel numbers",
        run: invalid_function,
    },
    Check {
        name: "RESERVED_BITS: upper halves of arg0, arg1 (SEND, RECEIVE) and arg3 (SEND, RECEIVE, REPLY, REPLY_RECEIVE)",
        run: reserved_register_bits,
    },
    Check {
        name: "RESERVED_BITS: slot reserved field and rights bits, kernel request fields",
        run: reserved_fields,
    },
    Check {
        name: "BAD_SIZES: data and slots beyond the total, size fields RECEIVE forbids, checked before NOTHING_TO_REPLY",
        run: bad_message_sizes,
    },
    Check {
        name: "BAD_SIZES: kernel requests of the wrong length, replies that do not fit, slots on a kernel function",
        run: bad_kernel_sizes,
    },
    Check {
        name: "BAD_BUFFER: null, kernel-half, non-canonical, unmapped, read-only and page-crossing buffers",
        run: bad_buffer,
    },
    Check {
        name: "a buffer of total size 0 is never touched (null and kernel-half msgPtr)",
        run: empty_buffer_untouched,
    },
    Check {
        name: "NOT_OWNER: RECEIVE on a client reference",
        run: not_owner,
    },
    Check {
        name: "NOTHING_TO_REPLY: REPLY and REPLY_RECEIVE with nothing held, and a second REPLY",
        run: nothing_to_reply,
    },
    Check {
        name: "REPLY from a read-only buffer works; REPLY_RECEIVE into it is BAD_BUFFER and keeps the caller waiting",
        run: read_only_reply,
    },
    Check {
        name: "RIGHTS_EXCEEDED: slots and DUPLICATE granting rights not held",
        run: rights_exceeded,
    },
    Check {
        name: "NOT_TRANSFERABLE: no TRANSFER right, a COPY of RECEIVE, a MOVE that drops RECEIVE",
        run: not_transferable,
    },
    Check {
        name: "DUPLICATE_SLOT: one descriptor in two slots with a MOVE (two COPYs are fine)",
        run: duplicate_slot,
    },
    Check {
        name: "BAD_SLOT: transfer modes other than COPY and MOVE",
        run: bad_slot,
    },
    Check {
        name: "MISSING_RIGHT: SEND, EVENT_SIGNAL, EVENT_WAIT, DUPLICATE and DOOR_CREATE (a capability without SEND) without their right",
        run: missing_right,
    },
    Check {
        name: "no capability: a process holding none gets FUNCTION_OUT_OF_RANGE (NULL), WRONG_OBJECT_TYPE (its door), BAD_DESCRIPTOR (not open); a capability passed on lets it DOOR_CREATE",
        run: no_capability,
    },
    Check {
        name: "PEER_DIED: SEND to a door whose owner reference was closed (after the buffer check)",
        run: peer_died_at_send,
    },
    Check {
        name: "RECEIVE_BUFFER_TOO_SMALL: a waiting receiver is woken with the sizes, the message stays queued",
        run: too_small_while_waiting,
    },
    Check {
        name: "RECEIVE_BUFFER_TOO_SMALL: a queued message too big fails RECEIVE at once and stays queued",
        run: too_small_when_queued,
    },
    Check {
        name: "ABANDONED: a server thread that RECEIVEs again fails the caller it held",
        run: abandoned,
    },
    Check {
        name: "TABLE_FULL: DUPLICATE and EVENT_CREATE in a full table",
        run: table_full,
    },
    Check {
        name: "TABLE_FULL: a message the receiver's full table cannot take fails its sender, who keeps the descriptor (D10)",
        run: table_full_at_delivery,
    },
];

/// A user-range function the helper server does not serve (its error
/// reply, should a call get through, ends nothing).
const UNSERVED: Function = Function(USER_BASE + 0x7f);

/// A SEND of `function` to `target` with `data`, a buffer of `total`.
fn send(function: Function, target: Descriptor, data: &[u8], total: u16) -> TrapArgs {
    let mut buffer = Buffer::new();
    buffer.put_value(0, data);
    buffer.send(
        function,
        target,
        abi::message::sizes(total, data.len() as u16, 0),
    )
}

/// A SEND of `function` to `target` whose message is only `slots`.
fn send_slots(function: Function, target: Descriptor, slots: &[DescriptorSlot]) -> TrapArgs {
    let mut buffer = Buffer::new();
    for (index, slot) in slots.iter().enumerate() {
        buffer.put_slot_of(0, index, *slot);
    }
    buffer.send(
        function,
        target,
        abi::message::sizes(512, 0, slots.len() as u8),
    )
}

/// Raw registers, buffer-less: any total the test passes is 0 or the
/// call is refused before the buffer is looked at.
fn registers(arg0: u64, arg1: u64, arg3: u64) -> TrapArgs {
    let mut buffer = Buffer::new();
    buffer.trap_from_start(arg0, arg1, arg3)
}

/// Requests for the capability functions that fail on their own even if a
/// kernel wrongly got past the target checks (ABI.md §6: those come
/// first), so that no check here creates, registers or ends anything.
mod doomed {
    use super::*;

    /// DOOR_CREATE of kind 2: INVALID_ARGUMENT.
    pub fn door_create() -> Vec<u8> {
        DoorCreateRequest::with_kind_number(2, 0)
            .as_bytes()
            .to_vec()
    }

    /// SPAWN of a program not in the boot archive: INVALID_ARGUMENT.
    pub fn spawn() -> Vec<u8> {
        let name = b"no-such-program";
        let mut request = SpawnRequest::with_lengths(name.len() as u32, 0)
            .as_bytes()
            .to_vec();
        request.extend_from_slice(name);
        request
    }

    /// ARCHIVE_READ of a file not in the boot archive: INVALID_ARGUMENT.
    pub fn archive_read() -> Vec<u8> {
        let name = b"no-such-file";
        let mut request = ArchiveReadRequest::with_name_length(name.len() as u32, 0)
            .as_bytes()
            .to_vec();
        request.extend_from_slice(name);
        request
    }

    /// DEBUG_EXIT with its reserved field set: RESERVED_BITS.
    pub fn debug_exit() -> Vec<u8> {
        ExitRequest::new(1).with_reserved(1).as_bytes().to_vec()
    }

    /// MANAGER_REGISTER of descriptor 0: BAD_DESCRIPTOR.
    pub fn manager_register() -> Vec<u8> {
        descriptor_request(Descriptor::NULL, 0).to_vec()
    }

    /// PROCESS_SET_COOKIE (any cookie).
    pub fn process_set_cookie() -> Vec<u8> {
        CookieRequest::new(1).as_bytes().to_vec()
    }
}

fn bad_descriptor(fixture: &mut Fixture) -> Outcome {
    let _ = fixture;
    for target in [1000, MAX_DESCRIPTORS + 1, u32::MAX] {
        expect_error(
            format!("SEND to descriptor {target}"),
            send(UNSERVED, Descriptor(target), &[], 64),
            Error::BadDescriptor,
        )?;
    }
    let closed = event()?;
    let number = closed.descriptor();
    closed.close().setup("CLOSE")?;
    expect_error(
        "SEND to a closed descriptor",
        send(UNSERVED, number, &[], 64),
        Error::BadDescriptor,
    )?;
    let mut buffer = Buffer::new();
    expect_error(
        "RECEIVE on a closed descriptor",
        buffer.receive(number, 64),
        Error::BadDescriptor,
    )?;
    expect_error(
        "DESCRIPTOR_INFO of a closed descriptor",
        info(number).0,
        Error::BadDescriptor,
    )?;
    expect_error(
        "DESCRIPTOR_INFO of descriptor 0",
        info(Descriptor::NULL).0,
        Error::BadDescriptor,
    )?;
    expect_error(
        "EVENT_SIGNAL on a closed descriptor",
        kcall(KernelFunction::EventSignal, number, &[], 64).0,
        Error::BadDescriptor,
    )?;
    expect_error(
        "DOOR_CREATE on a closed descriptor",
        kcall(
            KernelFunction::DoorCreate,
            number,
            &doomed::door_create(),
            64,
        )
        .0,
        Error::BadDescriptor,
    )?;
    // The target checks come before the buffer's (ABI.md §6).
    expect_error(
        "ARCHIVE_READ on a closed descriptor, with a null buffer",
        at(
            KernelFunction::ArchiveRead.function().bits(),
            u64::from(number.0),
            0,
            abi::message::sizes(64, doomed::archive_read().len() as u16, 0),
        ),
        Error::BadDescriptor,
    )
}

fn wrong_object_type(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let process = fixture.server_process()?;
    let event = event()?;
    expect_error(
        "SEND of a user function to an event",
        send(UNSERVED, event.descriptor(), &[], 64),
        Error::WrongObjectType,
    )?;
    expect_error(
        "SEND of a user function to a process handle",
        send(UNSERVED, process, &[], 64),
        Error::WrongObjectType,
    )?;
    let mut buffer = Buffer::new();
    expect_error(
        "RECEIVE on an event",
        buffer.receive(event.descriptor(), 64),
        Error::WrongObjectType,
    )?;
    expect_error(
        "EVENT_SIGNAL on a door",
        kcall(KernelFunction::EventSignal, server, &[], 64).0,
        Error::WrongObjectType,
    )?;
    expect_error(
        "EVENT_WAIT on a process handle",
        kcall(KernelFunction::EventWait, process, &[], 64).0,
        Error::WrongObjectType,
    )?;
    // Capability functions (ABI.md §6) on objects of another kind.
    let cases: [(&str, KernelFunction, Descriptor, Vec<u8>); 7] = [
        (
            "DOOR_CREATE on an event",
            KernelFunction::DoorCreate,
            event.descriptor(),
            doomed::door_create(),
        ),
        (
            "SPAWN on a door",
            KernelFunction::Spawn,
            server,
            doomed::spawn(),
        ),
        (
            "MANAGER_REGISTER on a process handle",
            KernelFunction::ManagerRegister,
            process,
            doomed::manager_register(),
        ),
        (
            "ARCHIVE_READ on the process-control capability",
            KernelFunction::ArchiveRead,
            FIRST_PROCESS_CONTROL,
            doomed::archive_read(),
        ),
        (
            "DEBUG_EXIT on the boot-archive capability",
            KernelFunction::DebugExit,
            FIRST_BOOT_ARCHIVE,
            doomed::debug_exit(),
        ),
        (
            "DOOR_CREATE on the machine-control capability",
            KernelFunction::DoorCreate,
            FIRST_MACHINE_CONTROL,
            doomed::door_create(),
        ),
        (
            "PROCESS_SET_COOKIE on the process-control capability",
            KernelFunction::ProcessSetCookie,
            FIRST_PROCESS_CONTROL,
            doomed::process_set_cookie(),
        ),
    ];
    for (what, function, target, request) in cases {
        expect_error(
            what,
            kcall(function, target, &request, 64).0,
            Error::WrongObjectType,
        )?;
    }
    Ok(())
}

fn out_of_range_on_doors(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    for function in [
        SYSTEM_BASE,
        USER_BASE - 1,
        PROCESS_MANAGER_BASE,
        SYSTEM_BASE - 1,
    ] {
        expect_error(
            format!("SEND of {function:#x} to a user door"),
            send(Function(function), server, &[], 64),
            Error::FunctionOutOfRange,
        )?;
    }
    // A system door served by a helper that exits on its first call: a
    // call the kernel wrongly delivers ends in PEER_DIED, not in a hang.
    let system = spawn_server(
        ipc_test_helper::PROGRAM,
        role::EXIT_ON_CALL.as_bytes(),
        DoorKind::System,
        &[],
    )?;
    for function in [USER_BASE, i32::MAX, PROCESS_MANAGER_BASE] {
        expect_error(
            format!("SEND of {function:#x} to a system door"),
            send(Function(function), system.client(), &[], 64),
            Error::FunctionOutOfRange,
        )?;
    }
    expect_error(
        "SEND of SYSTEM_BASE to the system door (delivered; the helper exits)",
        send(Function(SYSTEM_BASE), system.client(), &[], 64),
        Error::PeerDied,
    )
}

fn out_of_range_kernel(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let (event, victim) = (event()?, event()?);
    expect_error(
        "CLOSE sent to a door",
        kcall(
            KernelFunction::Close,
            server,
            &descriptor_request(victim.descriptor(), 0),
            64,
        )
        .0,
        Error::FunctionOutOfRange,
    )?;
    expect_error(
        "YIELD sent to an event",
        kcall(KernelFunction::Yield, event.descriptor(), &[], 64).0,
        Error::FunctionOutOfRange,
    )?;
    for function in [USER_BASE, SYSTEM_BASE, i32::MAX] {
        expect_error(
            format!("SEND of {function:#x} to NULL"),
            send(Function(function), Descriptor::NULL, &[], 64),
            Error::FunctionOutOfRange,
        )?;
    }
    expect_error(
        "EVENT_SIGNAL to NULL",
        kcall(KernelFunction::EventSignal, Descriptor::NULL, &[], 64).0,
        Error::FunctionOutOfRange,
    )?;
    expect_error(
        "EVENT_WAIT to NULL",
        kcall(KernelFunction::EventWait, Descriptor::NULL, &[], 64).0,
        Error::FunctionOutOfRange,
    )?;
    // The capability functions and PROCESS_SET_COOKIE take an object
    // (ABI.md §6): NULL is out of range for them, although this process
    // (the first) holds every capability.
    let cases: [(&str, KernelFunction, Vec<u8>); 6] = [
        (
            "DOOR_CREATE",
            KernelFunction::DoorCreate,
            doomed::door_create(),
        ),
        ("SPAWN", KernelFunction::Spawn, doomed::spawn()),
        (
            "MANAGER_REGISTER",
            KernelFunction::ManagerRegister,
            doomed::manager_register(),
        ),
        (
            "ARCHIVE_READ",
            KernelFunction::ArchiveRead,
            doomed::archive_read(),
        ),
        (
            "DEBUG_EXIT",
            KernelFunction::DebugExit,
            doomed::debug_exit(),
        ),
        (
            "PROCESS_SET_COOKIE",
            KernelFunction::ProcessSetCookie,
            doomed::process_set_cookie(),
        ),
    ];
    for (what, function, request) in cases {
        expect_error(
            format!("{what} to NULL"),
            kcall(function, Descriptor::NULL, &request, 64).0,
            Error::FunctionOutOfRange,
        )?;
    }
    Ok(())
}

fn invalid_function(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    for target in [Descriptor::NULL, server] {
        for arg0 in [0xffff_ffff_u64, 0x8000_0000, 0xffff_fffe, 0x8000_8000] {
            expect_error(
                format!("arg0 {arg0:#x} to descriptor {}", target.0),
                registers(arg0, u64::from(target.0), abi::message::sizes(64, 0, 0)),
                Error::InvalidFunction,
            )?;
        }
        for arg0 in [0x000_u64, 0x004, 0x013, 0x024, 0x3ff] {
            expect_error(
                format!("unused kernel number {arg0:#x} to descriptor {}", target.0),
                registers(arg0, u64::from(target.0), abi::message::sizes(64, 0, 0)),
                Error::InvalidFunction,
            )?;
        }
    }
    Ok(())
}

fn reserved_register_bits(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let user = UNSERVED.bits();
    let counters = KernelFunction::Counters.function().bits();
    let ok_sizes = abi::message::sizes(64, 0, 0);
    let cases: [(&str, u64, u64, u64); 6] = [
        ("arg0 = -1 sign-extended", u64::MAX, 0, ok_sizes),
        (
            "arg0 with bit 32 (user function)",
            user | 1 << 32,
            u64::from(server.0),
            ok_sizes,
        ),
        (
            "arg0 with bit 63 (COUNTERS)",
            counters | 1 << 63,
            0,
            ok_sizes,
        ),
        (
            "SEND arg1 with bit 32",
            user,
            u64::from(server.0) | 1 << 32,
            ok_sizes,
        ),
        (
            "SEND arg3 with bit 40",
            user,
            u64::from(server.0),
            ok_sizes | 1 << 40,
        ),
        (
            "COUNTERS arg3 with bit 32",
            counters,
            0,
            abi::message::sizes(64, 0, 0) | 1 << 32,
        ),
    ];
    for (what, arg0, arg1, arg3) in cases {
        expect_error(what, registers(arg0, arg1, arg3), Error::ReservedBits)?;
    }
    let reply = abi::function::REPLY.bits();
    let reply_receive = abi::function::REPLY_RECEIVE.bits();
    expect_error(
        "REPLY arg3 with bit 32 (nothing held)",
        registers(reply, 0, abi::message::sizes(8, 0, 0) | 1 << 32),
        Error::ReservedBits,
    )?;
    expect_error(
        "REPLY_RECEIVE arg3 with bit 63 (nothing held)",
        registers(reply_receive, 0, abi::message::sizes(8, 0, 0) | 1 << 63),
        Error::ReservedBits,
    )?;
    let mut queued = QueuedCall::new()?;
    let owner = u64::from(queued.door.owner().0);
    let receive = abi::function::RECEIVE.bits();
    let result = queued.trap_expecting_failure(|buffer| {
        buffer.trap_from_start(receive, owner | 1 << 63, abi::message::sizes(64, 0, 0))
    });
    expect_error("RECEIVE arg1 with bit 63", result, Error::ReservedBits)?;
    let result = queued.trap_expecting_failure(|buffer| {
        buffer.trap_from_start(receive, owner, abi::message::sizes(64, 0, 0) | 1 << 32)
    });
    expect_error("RECEIVE arg3 with bit 32", result, Error::ReservedBits)?;
    queued.finish()
}

fn reserved_fields(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let event = event()?;
    let slot = DescriptorSlot::copy(event.descriptor(), Rights::SIGNAL);
    let slots = [
        (
            "a slot's reserved field",
            DescriptorSlot {
                reserved: 1,
                ..slot
            },
        ),
        (
            "a slot with rights bit 6",
            DescriptorSlot {
                rights: 1 << 6,
                ..slot
            },
        ),
        (
            "a slot with rights bit 31",
            DescriptorSlot {
                rights: 1 << 31 | Rights::SIGNAL.0,
                ..slot
            },
        ),
    ];
    for (what, slot) in slots {
        expect_error(what, send_slots(KEEP, server, &[slot]), Error::ReservedBits)?;
    }
    let requests: [(&str, KernelFunction, Vec<u8>); 6] = [
        (
            "CLOSE with rights",
            KernelFunction::Close,
            descriptor_request(event.descriptor(), 1).to_vec(),
        ),
        (
            "DESCRIPTOR_INFO with rights",
            KernelFunction::DescriptorInfo,
            descriptor_request(event.descriptor(), Rights::SIGNAL.0).to_vec(),
        ),
        (
            "DUPLICATE with rights bit 6",
            KernelFunction::Duplicate,
            descriptor_request(event.descriptor(), 1 << 6).to_vec(),
        ),
        (
            "MAP_ANONYMOUS with its reserved field",
            KernelFunction::MapAnonymous,
            MapRequest::new(0, PAGE, protection::READ | protection::WRITE)
                .with_reserved(1)
                .as_bytes()
                .to_vec(),
        ),
        (
            "MAP_ANONYMOUS with protection bit 3",
            KernelFunction::MapAnonymous,
            MapRequest::new(0, PAGE, protection::READ | 1 << 3)
                .as_bytes()
                .to_vec(),
        ),
        (
            "DEBUG_EXIT (failure code) with its reserved field, to the machine-control capability",
            KernelFunction::DebugExit,
            ExitRequest::new(1).with_reserved(1).as_bytes().to_vec(),
        ),
    ];
    for (what, function, request) in requests {
        let target = match function {
            KernelFunction::DebugExit => FIRST_MACHINE_CONTROL,
            _ => Descriptor::NULL,
        };
        expect_error(
            what,
            kcall(function, target, &request, 64).0,
            Error::ReservedBits,
        )?;
    }
    Ok(())
}

fn bad_message_sizes(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let user = UNSERVED.bits();
    let target = u64::from(server.0);
    let cases = [
        ("data 16 in a total of 8", abi::message::sizes(8, 16, 0)),
        (
            "data 9 and a slot (32 bytes) in a total of 24",
            abi::message::sizes(24, 9, 1),
        ),
        (
            "data 4095 and a slot in a total of 4095",
            abi::message::sizes(4095, 4095, 1),
        ),
        ("data 1 in a total of 0", abi::message::sizes(0, 1, 0)),
        (
            "data 4000 and 7 slots in a total of 4095",
            abi::message::sizes(4095, 4000, 7),
        ),
    ];
    for (what, arg3) in cases {
        expect_error(
            format!("SEND: {what}"),
            registers(user, target, arg3),
            Error::BadSizes,
        )?;
    }
    let reply = abi::function::REPLY.bits();
    let reply_receive = abi::function::REPLY_RECEIVE.bits();
    expect_error(
        "REPLY: data 16 in a total of 8 (nothing held)",
        registers(reply, 0, abi::message::sizes(8, 16, 0)),
        Error::BadSizes,
    )?;
    expect_error(
        "REPLY_RECEIVE: data 16 in a total of 8 (nothing held)",
        registers(reply_receive, 0, abi::message::sizes(8, 16, 0)),
        Error::BadSizes,
    )?;
    let mut queued = QueuedCall::new()?;
    let owner = queued.door.owner();
    let result = queued.trap_expecting_failure(|buffer| {
        buffer.trap_from_start(
            abi::function::RECEIVE.bits(),
            u64::from(owner.0),
            abi::message::sizes(64, 1, 0),
        )
    });
    expect_error("RECEIVE with a data size", result, Error::BadSizes)?;
    let result = queued.trap_expecting_failure(|buffer| {
        buffer.trap_from_start(
            abi::function::RECEIVE.bits(),
            u64::from(owner.0),
            abi::message::sizes(64, 0, 1),
        )
    });
    expect_error("RECEIVE with a descriptor count", result, Error::BadSizes)?;
    queued.finish()
}

fn bad_kernel_sizes(_: &mut Fixture) -> Outcome {
    let (event, victim) = (event()?, event()?);
    let request = descriptor_request(victim.descriptor(), 0);
    let cases: [(&str, KernelFunction, &[u8], u16); 7] = [
        (
            "CLOSE with 4 bytes",
            KernelFunction::Close,
            &request[..4],
            64,
        ),
        ("CLOSE with 12 bytes", KernelFunction::Close, &[0; 12], 64),
        ("YIELD with 1 byte", KernelFunction::Yield, &[0], 64),
        (
            "EVENT_CREATE with 8 bytes",
            KernelFunction::EventCreate,
            &[0; 8],
            64,
        ),
        (
            "COUNTERS into 16 bytes (needs 56)",
            KernelFunction::Counters,
            &[],
            16,
        ),
        (
            "DESCRIPTOR_INFO into 15 bytes (needs 16)",
            KernelFunction::DescriptorInfo,
            &request,
            15,
        ),
        (
            "EVENT_CREATE into 16 bytes (needs 24)",
            KernelFunction::EventCreate,
            &[],
            16,
        ),
    ];
    for (what, function, data, total) in cases {
        expect_error(
            what,
            kcall(function, Descriptor::NULL, data, total).0,
            Error::BadSizes,
        )?;
    }
    let mut buffer = Buffer::new();
    buffer.put_value(0, &request);
    buffer.put_slot_of(
        8,
        0,
        DescriptorSlot::copy(event.descriptor(), Rights::SIGNAL),
    );
    expect_error(
        "CLOSE with a descriptor slot",
        buffer.send(
            KernelFunction::Close.function(),
            Descriptor::NULL,
            abi::message::sizes(64, 8, 1),
        ),
        Error::BadSizes,
    )
}

/// Three pages for buffer checks: writable, read-only, unmapped
/// (userlib's [`RawPages`]: no Rust reference covers them).
struct Pages {
    raw: RawPages,
    base: u64,
}

impl Pages {
    fn new() -> Result<Self, crate::check::Failure> {
        let raw = RawPages::map(3).setup("MAP_ANONYMOUS of 3 pages")?;
        let base = raw.base();
        raw.protect(base + PAGE, PAGE, protection::READ)
            .setup("PROTECT to READ")?;
        raw.unmap(base + 2 * PAGE, PAGE)
            .setup("UNMAP of the third page")?;
        Ok(Pages { raw, base })
    }

    /// A trap whose buffer is `address`, in these pages or outside the
    /// memory Rust code uses.
    fn at(&self, arg0: u64, arg1: u64, address: u64, arg3: u64) -> TrapArgs {
        trap_in(Some(&self.raw), arg0, arg1, address, arg3)
    }
}

/// What a refused raw trap stands in for: registers no kernel returns,
/// which no check accepts.
const NOT_TRAPPED: TrapArgs = TrapArgs {
    arg0: u64::MAX,
    arg1: u64::MAX,
    arg2: u64::MAX,
    arg3: u64::MAX,
};

/// A trap whose buffer is `address`: in `pages`, or outside the memory
/// Rust code uses (null, the kernel half, non-canonical).
fn trap_in(pages: Option<&RawPages>, arg0: u64, arg1: u64, address: u64, arg3: u64) -> TrapArgs {
    let args = TrapArgs {
        arg0,
        arg1,
        arg2: address,
        arg3,
    };
    raw::trap_at(args, pages).unwrap_or(NOT_TRAPPED)
}

/// A trap whose buffer is `address`, outside the memory Rust code uses.
fn at(arg0: u64, arg1: u64, address: u64, arg3: u64) -> TrapArgs {
    trap_in(None, arg0, arg1, address, arg3)
}

fn bad_buffer(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let pages = Pages::new()?;
    let inspect = INSPECT.bits();
    let target = u64::from(server.0);
    let cases = [
        ("null", 0),
        ("the kernel half", 0xffff_8000_0000_0000),
        ("a non-canonical address", 0x0000_8000_0000_0000),
        ("an unmapped page", pages.base + 2 * PAGE),
        ("a read-only page", pages.base + PAGE),
        (
            "a writable page running into a read-only one",
            pages.base + PAGE - 32,
        ),
        (
            "a read-only page running into an unmapped one",
            pages.base + 2 * PAGE - 32,
        ),
        (
            "the last byte of the user half",
            abi::process::USER_END - 32,
        ),
    ];
    for (what, address) in cases {
        expect_error(
            format!("SEND with a 64-byte buffer at {what} ({address:#x})"),
            pages.at(inspect, target, address, abi::message::sizes(64, 0, 0)),
            Error::BadBuffer,
        )?;
    }
    let info = KernelFunction::DescriptorInfo.function().bits();
    expect_error(
        "DESCRIPTOR_INFO with a null buffer",
        pages.at(info, 0, 0, abi::message::sizes(64, 8, 0)),
        Error::BadBuffer,
    )?;
    expect_error(
        "DESCRIPTOR_INFO with a read-only buffer",
        pages.at(info, 0, pages.base + PAGE, abi::message::sizes(64, 8, 0)),
        Error::BadBuffer,
    )?;
    // The control: the last 32 bytes of the writable page are fine (the
    // helper's INSPECT reply does not fit 32 bytes, so it answers empty).
    expect_registers(
        "SEND with a 32-byte buffer at the end of the writable page",
        pages.at(
            inspect,
            target,
            pages.base + PAGE - 32,
            abi::message::sizes(32, 0, 0),
        ),
        TrapArgs::completed(0, 0, 0, 0),
    )?;
    let mut queued = QueuedCall::new()?;
    let owner = u64::from(queued.door.owner().0);
    let receive = abi::function::RECEIVE.bits();
    let read_only = pages.base + PAGE;
    let result = queued.trap_expecting_failure(|_| {
        pages.at(receive, owner, read_only, abi::message::sizes(64, 0, 0))
    });
    expect_error("RECEIVE into a read-only page", result, Error::BadBuffer)?;
    let result = queued
        .trap_expecting_failure(|_| pages.at(receive, owner, 0, abi::message::sizes(64, 0, 0)));
    expect_error("RECEIVE into null", result, Error::BadBuffer)?;
    queued.finish()
}

fn empty_buffer_untouched(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let inspect = INSPECT.bits();
    for (what, address) in [("null", 0), ("the kernel half", 0xffff_8000_0000_0000)] {
        expect_registers(
            format!("INSPECT with total 0 at {what} (the helper answers empty)"),
            at(
                inspect,
                u64::from(server.0),
                address,
                abi::message::sizes(0, 0, 0),
            ),
            TrapArgs::completed(0, 0, 0, 0),
        )?;
    }
    Ok(())
}

fn not_owner(_: &mut Fixture) -> Outcome {
    let mut queued = QueuedCall::new()?;
    let client = queued.door.client();
    let result = queued.trap_expecting_failure(|buffer| buffer.receive(client, 64));
    expect_error("RECEIVE on a client reference", result, Error::NotOwner)?;
    queued.finish()
}

fn nothing_to_reply(_: &mut Fixture) -> Outcome {
    let mut buffer = Buffer::new();
    expect_error(
        "REPLY with nothing held",
        buffer.reply(0, abi::message::sizes(8, 8, 0)),
        Error::NothingToReply,
    )?;
    expect_error(
        "REPLY_RECEIVE with nothing held",
        buffer.reply_receive(0, abi::message::sizes(64, 8, 0)),
        Error::NothingToReply,
    )?;
    let door = ScratchDoor::new()?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[5; 8], 64)?;
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_eq("RECEIVE of the call", received.arg0, SCRATCH_CALL.bits())?;
    expect_registers(
        "the first REPLY",
        buffer.reply(0, abi::message::sizes(8, 0, 0)),
        TrapArgs::default(),
    )?;
    expect_error(
        "a second REPLY",
        buffer.reply(0, abi::message::sizes(8, 0, 0)),
        Error::NothingToReply,
    )?;
    let (result, _) = caller.join()?;
    expect_registers(
        "the caller's result",
        result,
        TrapArgs::completed(0, 0, 0, 0),
    )
}

fn read_only_reply(_: &mut Fixture) -> Outcome {
    let pages = Pages::new()?;
    let door = ScratchDoor::new()?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[6; 8], 64)?;
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    expect_eq("RECEIVE of the call", received.arg0, SCRATCH_CALL.bits())?;
    let read_only = pages.base + PAGE;
    let reply_receive = abi::function::REPLY_RECEIVE.bits();
    let reply = abi::function::REPLY.bits();
    expect_error(
        "REPLY_RECEIVE from (and into) a read-only page",
        pages.at(reply_receive, 0, read_only, abi::message::sizes(64, 8, 0)),
        Error::BadBuffer,
    )?;
    expect_error(
        "REPLY from an unmapped page",
        pages.at(
            reply,
            0,
            pages.base + 2 * PAGE,
            abi::message::sizes(64, 8, 0),
        ),
        Error::BadBuffer,
    )?;
    // Still held: a REPLY from the read-only page (zeros: the page was
    // zeroed before PROTECT) answers it.
    expect_registers(
        "REPLY of 8 bytes from a read-only page",
        pages.at(reply, 0, read_only, abi::message::sizes(64, 8, 0)),
        TrapArgs::default(),
    )?;
    let (result, _) = caller.join()?;
    expect_registers(
        "the caller's result",
        result,
        TrapArgs::completed(0, 0, 8, 0),
    )
}

fn rights_exceeded(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let event = event()?;
    let limited = duplicate(
        event.descriptor(),
        Rights(Rights::SIGNAL.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0),
    )?;
    let more = Rights(Rights::SIGNAL.0 | Rights::WAIT.0 | Rights::TRANSFER.0);
    expect_error(
        "a COPY slot granting WAIT from a reference without it",
        send_slots(
            KEEP,
            server,
            &[DescriptorSlot::copy(limited.descriptor(), more)],
        ),
        Error::RightsExceeded,
    )?;
    expect_error(
        "a MOVE slot granting WAIT from a reference without it",
        send_slots(
            KEEP,
            server,
            &[DescriptorSlot::moving(limited.descriptor(), more)],
        ),
        Error::RightsExceeded,
    )?;
    expect_error(
        "DUPLICATE asking for WAIT",
        kcall(
            KernelFunction::Duplicate,
            Descriptor::NULL,
            &descriptor_request(limited.descriptor(), Rights::SIGNAL.0 | Rights::WAIT.0),
            64,
        )
        .0,
        Error::RightsExceeded,
    )
}

fn not_transferable(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let event = event()?;
    let stuck = duplicate(
        event.descriptor(),
        Rights(Rights::SIGNAL.0 | Rights::DUPLICATE.0),
    )?;
    expect_error(
        "a COPY of a reference without TRANSFER",
        send_slots(
            KEEP,
            server,
            &[DescriptorSlot::copy(stuck.descriptor(), Rights::SIGNAL)],
        ),
        Error::NotTransferable,
    )?;
    expect_error(
        "a COPY of a reference without TRANSFER, granting WAIT it lacks too",
        send_slots(
            KEEP,
            server,
            &[DescriptorSlot::copy(stuck.descriptor(), Rights::WAIT)],
        ),
        Error::NotTransferable,
    )?;
    // A door of its own: if the kernel wrongly lets the owner reference
    // go, the helper closes it and nothing else is hurt.
    let mut door = ScratchDoor::new()?;
    let cases = [
        (
            "a COPY of an owner reference",
            DescriptorSlot::copy(door.owner(), Rights::DOOR_OWNER),
        ),
        (
            "a COPY of RECEIVE alone",
            DescriptorSlot::copy(door.owner(), Rights::RECEIVE),
        ),
        (
            "a MOVE of an owner reference without RECEIVE",
            DescriptorSlot::moving(door.owner(), Rights::TRANSFER),
        ),
    ];
    for (what, slot) in cases {
        let result = send_slots(KEEP, server, &[slot]);
        if !result.is_kernel_failure() {
            door.owner_moved();
        }
        expect_error(what, result, Error::NotTransferable)?;
    }
    Ok(())
}

fn duplicate_slot(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let event = event()?;
    let copy = duplicate(event.descriptor(), Rights::EVENT)?;
    let d = copy.descriptor();
    let cases = [
        (
            "MOVE then COPY",
            [
                DescriptorSlot::moving(d, Rights::EVENT),
                DescriptorSlot::copy(d, Rights::SIGNAL),
            ],
        ),
        (
            "COPY then MOVE",
            [
                DescriptorSlot::copy(d, Rights::SIGNAL),
                DescriptorSlot::moving(d, Rights::EVENT),
            ],
        ),
        (
            "MOVE twice",
            [
                DescriptorSlot::moving(d, Rights::EVENT),
                DescriptorSlot::moving(d, Rights::EVENT),
            ],
        ),
    ];
    for (what, slots) in cases {
        let result = send_slots(KEEP, server, &slots);
        if !result.is_kernel_failure() {
            let _ = OwnedDescriptor::into_raw(copy);
            return expect_error(what, result, Error::DuplicateSlot);
        }
        expect_error(what, result, Error::DuplicateSlot)?;
    }
    expect_registers(
        "COPY twice",
        send_slots(
            KEEP,
            server,
            &[
                DescriptorSlot::copy(d, Rights::SIGNAL),
                DescriptorSlot::copy(d, Rights::WAIT),
            ],
        ),
        TrapArgs::completed(2, 0, 8, 0),
    )?;
    crate::fixture::expect_info(
        "the descriptor after all that",
        d,
        abi::ObjectKind::Event,
        Rights::EVENT,
    )
}

fn bad_slot(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let event = event()?;
    for mode in [2, u32::MAX] {
        let slot = DescriptorSlot {
            mode,
            ..DescriptorSlot::copy(event.descriptor(), Rights::SIGNAL)
        };
        expect_error(
            format!("a slot with mode {mode:#x}"),
            send_slots(KEEP, server, &[slot]),
            Error::BadSlot,
        )?;
    }
    Ok(())
}

fn missing_right(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let no_send = duplicate(server, Rights(Rights::TRANSFER.0 | Rights::DUPLICATE.0))?;
    expect_error(
        "SEND through a reference without SEND",
        send(KEEP, no_send.descriptor(), &[], 64),
        Error::MissingRight,
    )?;
    let event = event()?;
    let wait_only = duplicate(event.descriptor(), Rights::WAIT)?;
    expect_error(
        "EVENT_SIGNAL without SIGNAL",
        kcall(KernelFunction::EventSignal, wait_only.descriptor(), &[], 64).0,
        Error::MissingRight,
    )?;
    // A count of 1 first, so that a wrongly allowed wait returns.
    kernel::event_signal(event.descriptor()).setup("EVENT_SIGNAL")?;
    let signal_only = duplicate(event.descriptor(), Rights::SIGNAL)?;
    let result = kcall(KernelFunction::EventWait, signal_only.descriptor(), &[], 64).0;
    if result == TrapArgs::error(Error::MissingRight) {
        kernel::event_wait(event.descriptor()).setup("EVENT_WAIT")?;
    }
    expect_error("EVENT_WAIT without WAIT", result, Error::MissingRight)?;
    expect_error(
        "DUPLICATE without DUPLICATE",
        kcall(
            KernelFunction::Duplicate,
            Descriptor::NULL,
            &descriptor_request(signal_only.descriptor(), Rights::SIGNAL.0),
            64,
        )
        .0,
        Error::MissingRight,
    )?;
    let no_send_capability = duplicate(
        FIRST_PROCESS_CONTROL,
        Rights(Rights::TRANSFER.0 | Rights::DUPLICATE.0),
    )?;
    expect_error(
        "DOOR_CREATE through the process-control capability without SEND",
        kcall(
            KernelFunction::DoorCreate,
            no_send_capability.descriptor(),
            &doomed::door_create(),
            64,
        )
        .0,
        Error::MissingRight,
    )
}

/// The probe's report (`delegated`: a DUPLICATE of our process-control
/// capability passed on as its descriptor 2).
fn probe_report(delegated: bool) -> Result<ProbeReport, crate::check::Failure> {
    let capability = if delegated {
        Some(duplicate(FIRST_PROCESS_CONTROL, Rights::CAPABILITY)?)
    } else {
        None
    };
    let more: Vec<DescriptorSlot> = capability
        .iter()
        .map(|copy| DescriptorSlot::copy(copy.descriptor(), Rights::CAPABILITY))
        .collect();
    let probe = spawn_helper(role::PROBE, &more)?;
    let mut buffer = Buffer::new();
    let result = buffer.send(REPORT, probe.client(), abi::message::sizes(512, 0, 0));
    expect_registers(
        "the probe's REPORT",
        result,
        TrapArgs::completed(
            0,
            0,
            (REPLY_PAYLOAD_OFFSET + size_of::<ProbeReport>()) as u16,
            0,
        ),
    )?;
    buffer.get(REPLY_PAYLOAD_OFFSET).setup("the report")
}

/// The refusals every probe must report: without a capability as the
/// target there is nothing to send these functions to (ABI.md §6).
fn expect_refusals(whose: &str, report: &ProbeReport) -> Outcome {
    let cases = [
        (
            "DOOR_CREATE to NULL",
            report.door_create,
            Error::FunctionOutOfRange,
        ),
        ("SPAWN to NULL", report.spawn, Error::FunctionOutOfRange),
        (
            "DEBUG_EXIT to NULL",
            report.debug_exit,
            Error::FunctionOutOfRange,
        ),
        (
            "ARCHIVE_READ to NULL",
            report.archive_read,
            Error::FunctionOutOfRange,
        ),
        (
            "MANAGER_REGISTER to NULL",
            report.manager_register,
            Error::FunctionOutOfRange,
        ),
        (
            "DOOR_CREATE to its door",
            report.door_create_to_door,
            Error::WrongObjectType,
        ),
        (
            "DEBUG_EXIT to its door",
            report.debug_exit_to_door,
            Error::WrongObjectType,
        ),
        (
            "SPAWN to a descriptor it does not hold",
            report.spawn_to_unopened,
            Error::BadDescriptor,
        ),
    ];
    for (what, registers, error) in cases {
        expect_error(format!("{what}, in {whose}"), registers.into(), error)?;
    }
    Ok(())
}

fn no_capability(_: &mut Fixture) -> Outcome {
    let alone = probe_report(false)?;
    expect_refusals("the probe without a capability", &alone)?;
    expect_registers(
        "the probe without a capability: its delegated DOOR_CREATE (not tried: no descriptor 2)",
        alone.delegated_door_create.into(),
        TrapArgs::default(),
    )?;
    // A capability passed on works for its new holder (ABI.md §6); the
    // NULL target and other objects still do not.
    let given = probe_report(true)?;
    expect_refusals("the probe given the process-control capability", &given)?;
    expect_registers(
        "the given probe's DOOR_CREATE through its descriptor 2",
        given.delegated_door_create.into(),
        TrapArgs::completed(0, 0, 8, 2),
    )?;
    // Its table: 1 its door, 2 the capability; new references take the
    // lowest free numbers (ABI.md §1.4).
    expect_eq(
        "the given probe's new references (descriptor, rights, mode)",
        given
            .delegated_slots
            .map(|slot| (slot.descriptor, slot.rights, slot.mode)),
        [
            (3, Rights::DOOR_OWNER.0, TransferMode::Copy as u32),
            (4, Rights::DOOR_CLIENT.0, TransferMode::Copy as u32),
        ],
    )
}

fn peer_died_at_send(_: &mut Fixture) -> Outcome {
    let mut door = ScratchDoor::new()?;
    door.close_owner()?;
    expect_error(
        "SEND to the dead door",
        send(UNSERVED, door.client(), &[1, 2, 3], 64),
        Error::PeerDied,
    )?;
    expect_error(
        "SEND to the dead door with a null buffer",
        at(
            UNSERVED.bits(),
            u64::from(door.client().0),
            0,
            abi::message::sizes(64, 0, 0),
        ),
        Error::BadBuffer,
    )
}

/// The registers of a RECEIVE that found a message of these sizes too big.
fn too_small(sizes: u64) -> TrapArgs {
    TrapArgs {
        arg3: sizes,
        ..TrapArgs::error(Error::ReceiveBufferTooSmall)
    }
}

fn too_small_while_waiting(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[9; 100], 200)?;
    let mut buffer = Buffer::new();
    // Nothing is queued yet: this waits, and the call wakes it.
    let result = buffer.receive(door.owner(), 16);
    expect_registers(
        "RECEIVE of 16 bytes",
        result,
        too_small(abi::message::sizes(200, 100, 0)),
    )?;
    serve_the_big_call(&door, caller)
}

fn too_small_when_queued(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let caller = spawn_caller(door.client(), SCRATCH_CALL, &[9; 100], 200)?;
    kernel::yield_now().setup("YIELD")?;
    let mut buffer = Buffer::new();
    let result = buffer.receive(door.owner(), 99);
    expect_registers(
        "RECEIVE of 99 bytes",
        result,
        too_small(abi::message::sizes(200, 100, 0)),
    )?;
    serve_the_big_call(&door, caller)
}

/// Receives the 100-byte call still queued on `door` and answers it.
fn serve_the_big_call(
    door: &ScratchDoor,
    caller: crate::fixture::Worker<crate::fixture::Called>,
) -> Outcome {
    let mut buffer = Buffer::new();
    let received = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    let expected = TrapArgs {
        arg0: SCRATCH_CALL.bits(),
        arg1: 0,
        arg2: buffer.address(),
        arg3: abi::message::sizes(200, 100, 0),
    };
    expect_registers("the RECEIVE that follows (4095 bytes)", received, expected)?;
    expect_eq("the data received", &buffer.bytes()[..100], &[9; 100][..])?;
    expect_registers(
        "REPLY",
        buffer.reply(0, abi::message::sizes(0, 0, 0)),
        TrapArgs::default(),
    )?;
    let (result, _) = caller.join()?;
    expect_registers(
        "the caller's result",
        result,
        TrapArgs::completed(0, 0, 0, 0),
    )
}

fn abandoned(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    let first = Function(SCRATCH_CALL.0 + 1);
    let second = Function(SCRATCH_CALL.0 + 2);
    let callers = [
        spawn_caller(door.client(), first, &[1; 8], 64)?,
        spawn_caller(door.client(), second, &[2; 8], 64)?,
    ];
    let mut buffer = Buffer::new();
    let held = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    let next = buffer.receive(door.owner(), MAX_TOTAL_SIZE);
    let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
    let [one, two] = callers;
    let (one, two) = (one.join()?.0, two.join()?.0);
    let (abandoned, answered) = if held.arg0 == first.bits() {
        (one, two)
    } else {
        (two, one)
    };
    ensure(
        "the two RECEIVEs",
        held.arg0 != next.arg0
            && [held.arg0, next.arg0]
                .iter()
                .all(|f| *f == first.bits() || *f == second.bits()),
        "both calls, one after the other",
        format!("{:#x} then {:#x}", held.arg0, next.arg0),
    )?;
    expect_registers("REPLY to the second call", replied, TrapArgs::default())?;
    expect_error("the first caller's result", abandoned, Error::Abandoned)?;
    expect_registers(
        "the second caller's result",
        answered,
        TrapArgs::completed(0, 0, 0, 0),
    )
}

fn table_full(_: &mut Fixture) -> Outcome {
    let event = event()?;
    // fill_table fails unless a DUPLICATE ends in TABLE_FULL.
    let copies = fill_table(event.descriptor())?;
    let last = info(Descriptor(MAX_DESCRIPTORS))
        .1
        .map(|i: DescriptorInfo| i.kind);
    let created = kcall(KernelFunction::EventCreate, Descriptor::NULL, &[], 64).0;
    drop(copies);
    expect_eq(
        "DESCRIPTOR_INFO of descriptor 1024 in the full table (kind)",
        last,
        Some(abi::ObjectKind::Event as u32),
    )?;
    expect_error("EVENT_CREATE in the full table", created, Error::TableFull)
}

/// DUPLICATEs `descriptor` until the table is full; returns the copies.
fn fill_table(descriptor: Descriptor) -> Result<Vec<OwnedDescriptor>, crate::check::Failure> {
    let mut copies = Vec::new();
    loop {
        match kernel::duplicate(descriptor, Rights::SIGNAL) {
            Ok(copy) => copies.push(copy),
            Err(Error::TableFull) => return Ok(copies),
            Err(error) => {
                return Err(crate::check::Failure::new(
                    "DUPLICATE",
                    "TABLE_FULL at last",
                    error,
                ));
            }
        }
        if copies.len() > MAX_DESCRIPTORS as usize {
            return Err(crate::check::Failure::new(
                "DUPLICATE",
                "TABLE_FULL at last",
                "more copies than a table holds",
            ));
        }
    }
}

fn table_full_at_delivery(_: &mut Fixture) -> Outcome {
    let door = ScratchDoor::new()?;
    // The relay MOVEs what it gets to its descriptor 2: our door.
    let relay = spawn_helper(
        role::RELAY,
        &[DescriptorSlot::copy(door.client(), Rights::DOOR_CLIENT)],
    )?;
    let (event, go) = (event()?, event()?);
    let (go_number, event_number) = (go.descriptor(), event.descriptor());
    let (relay_client, client) = (relay.client(), door.client());
    // A worker waits for our table to be full, then has the relay send us
    // an event, then calls us plainly so that our RECEIVE ends.
    // Made here: a worker that allocated before its trap could be
    // held up on the heap lock or a MAP_ANONYMOUS and lose its turn.
    let mut buffer = Buffer::new();
    let worker = spawn_worker(move || {
        let _ = buffer.kernel_call(KernelFunction::EventWait, go_number, &[], 64);
        let granted = Rights(Rights::SIGNAL.0 | Rights::TRANSFER.0);
        let mut buffer = Buffer::new();
        buffer.put_slot_of(0, 0, DescriptorSlot::copy(event_number, granted));
        let relayed = buffer.send(
            ipc_test_helper::RELAY,
            relay_client,
            abi::message::sizes(MAX_TOTAL_SIZE, 0, 1),
        );
        let report: ipc_test_helper::RelayReport =
            buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();
        let mut call = Buffer::new();
        let released = call.send(SCRATCH_CALL, client, abi::message::sizes(64, 0, 0));
        (relayed, report, released)
    })?;
    let copies = fill_table(event.descriptor())?;
    let signalled = kernel::event_signal(go_number);
    let mut buffer = Buffer::new();
    let received = if signalled.is_ok() {
        buffer.receive(door.owner(), MAX_TOTAL_SIZE)
    } else {
        TrapArgs::default()
    };
    let replied = buffer.reply(0, abi::message::sizes(0, 0, 0));
    drop(copies);
    signalled.setup("EVENT_SIGNAL")?;
    let (relayed, report, released) = worker.join()?;
    expect_registers(
        "the worker's RELAY",
        relayed,
        TrapArgs::completed(
            0,
            0,
            (REPLY_PAYLOAD_OFFSET + size_of::<ipc_test_helper::RelayReport>()) as u16,
            0,
        ),
    )?;
    expect_error(
        "the relay's FORWARD (a MOVE) into our full table",
        report.forward.into(),
        Error::TableFull,
    )?;
    expect_registers(
        "the relay's CLOSE of the descriptor it failed to move (it kept it)",
        report.close_after_move.into(),
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    expect_eq(
        "what our RECEIVE got (the plain call, not the FORWARD)",
        received.arg0,
        SCRATCH_CALL.bits(),
    )?;
    expect_registers("our REPLY", replied, TrapArgs::default())?;
    expect_registers(
        "the worker's plain call",
        released,
        TrapArgs::completed(0, 0, 0, 0),
    )
}
