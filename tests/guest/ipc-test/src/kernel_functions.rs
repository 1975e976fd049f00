//! Area 4: the kernel functions (ABI.md §6), each with its reply's exact
//! registers: descriptors, threads, memory, events, counters, doors, SPAWN
//! and ARCHIVE_READ. DOOR_CREATE, SPAWN and ARCHIVE_READ go to the kernel
//! capabilities this process, the first, starts with (ABI.md §7).

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use abi::kcall::{
    ArchiveReadRequest, DEFAULT_PRIORITY, DoorCreateRequest, KernelCounters, MapRequest,
    REPLY_PAYLOAD_OFFSET, SpawnRequest, ThreadCreateRequest, protection,
};
use abi::message::{DescriptorSlot, MAX_TOTAL_SIZE};
use abi::process::{
    FIRST_BOOT_ARCHIVE, FIRST_MACHINE_CONTROL, FIRST_PROCESS_CONTROL, FIRST_PROCESS_DESCRIPTORS,
    MAX_ARGUMENT_BYTES, USER_END, USER_IMAGE_BASE,
};
use abi::{Descriptor, Error, KernelFunction, ObjectKind, Rights, TransferMode, TrapArgs};
use ipc_test_helper::{FaultReport, REPLY_BYTES, ReplyBytesRequest, fault_step, role};
use userlib::kernel::{self, DoorKind};
use userlib::raw::{self, Buffer, RawPages};
use userlib::{Message, OwnedDescriptor};
use zerocopy::IntoBytes;

use crate::check::{
    Check, Failure, Outcome, Setup, ensure, expect_eq, expect_error, expect_registers,
};
use crate::fixture::{
    Fixture, PAGE, ScratchDoor, descriptor_request, event, expect_info, kcall, settle,
    spawn_helper, spawn_worker, yield_until,
};

/// The checks of this area, in order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "CLOSE: closes once, then BAD_DESCRIPTOR",
        run: close,
    },
    Check {
        name: "DUPLICATE: the lowest free descriptor, the rights asked for, the same object",
        run: duplicate_reference,
    },
    Check {
        name: "DESCRIPTOR_INFO: kind and rights of the first process's capabilities (1-3), user and system doors, events, process and thread handles",
        run: descriptor_kinds,
    },
    Check {
        name: "THREAD_CREATE: a second thread calls a server in another process",
        run: thread_does_ipc,
    },
    Check {
        name: "THREAD_CREATE: priority above 31 or the caller's, unaligned stack, kernel-half addresses -> INVALID_ARGUMENT",
        run: thread_create_errors,
    },
    Check {
        name: "YIELD: returns 0 and lets a ready thread of the same priority run first",
        run: yield_runs_others,
    },
    Check {
        name: "MAP_ANONYMOUS: zeroed, writable memory where the kernel chooses or where asked",
        run: map_anonymous,
    },
    Check {
        name: "MAP_ANONYMOUS: overlap, kernel half, past the user half -> BAD_ADDRESS_RANGE; unaligned, zero length, no READ (also PROTECT) -> INVALID_ARGUMENT",
        run: map_anonymous_errors,
    },
    Check {
        name: "UNMAP: the range stops being memory (BAD_BUFFER), unmapped pages are skipped, it can be mapped again",
        run: unmap,
    },
    Check {
        name: "UNMAP of 48 TiB holding 17 scattered pages returns at once and frees their frames and page tables",
        run: unmap_far_range,
    },
    Check {
        name: "PROTECT: read-only pages keep their bytes and are refused as buffers until made writable again",
        run: protect,
    },
    Check {
        name: "PROTECT: a write to a read-only page ends the process (its door gives PEER_DIED)",
        run: write_to_read_only_faults,
    },
    Check {
        name: "EVENT_CREATE/SIGNAL/WAIT: the reply slot, counting, msgRetVal = count left",
        run: event_counts,
    },
    Check {
        name: "EVENT_WAIT: waiters block until signalled, the longest waiter first",
        run: event_waiters,
    },
    Check {
        name: "COUNTERS: objects, descriptors and charges follow EVENT_CREATE and CLOSE",
        run: counters,
    },
    Check {
        name: "DEBUG_WRITE: prints and returns 0",
        run: debug_write,
    },
    Check {
        name: "DOOR_CREATE: owner and client references of user and system doors; kind 2 -> INVALID_ARGUMENT",
        run: door_create,
    },
    Check {
        name: "SPAWN: a process handle in reply slot 0; unknown program, non-ELF, too many argument bytes -> INVALID_ARGUMENT",
        run: spawn,
    },
    Check {
        name: "ARCHIVE_READ: the file's size and its bytes from the offset, as many as the buffer holds; no such file -> INVALID_ARGUMENT",
        run: archive_read,
    },
];

/// Where the memory checks map at fixed addresses (nothing else is there).
const TEST_REGION: u64 = 0x0000_3000_0000_0000;

/// The bytes of a `MapRequest`.
fn map_request(address: u64, length: u64, protection: u32) -> [u8; 24] {
    let mut bytes = [0u8; 24];
    bytes.copy_from_slice(MapRequest::new(address, length, protection).as_bytes());
    bytes
}

const RW: u32 = protection::READ | protection::WRITE;

/// A raw kernel call with an empty-payload reply: `replied(0, 0, 8, 0)`.
fn expect_done(what: &str, result: TrapArgs) -> Outcome {
    expect_registers(what, result, TrapArgs::completed(0, 0, 8, 0))
}

/// Reads a byte of test memory (mapped readable by the check, outside the
/// memory Rust code uses); `None` when it is not such memory.
fn peek(address: u64) -> Option<u8> {
    let mut byte = [0u8];
    let pages = RawPages::claim(address, 1).ok()?;
    pages.read(address, &mut byte).then_some(byte[0])
}

/// Writes a byte of test memory (mapped writable by the check); whether it
/// is test memory.
fn poke(address: u64, value: u8) -> bool {
    RawPages::claim(address, 1).is_ok_and(|pages| pages.write(address, &[value]))
}

/// What a refused raw trap stands in for: registers no kernel returns.
const NOT_TRAPPED: TrapArgs = TrapArgs {
    arg0: u64::MAX,
    arg1: u64::MAX,
    arg2: u64::MAX,
    arg3: u64::MAX,
};

/// A SEND whose buffer is at `address` (test memory, or not memory at all).
fn at(function: KernelFunction, request_size: u16, address: u64, total: u16) -> TrapArgs {
    let args = TrapArgs {
        arg0: function.function().bits(),
        arg1: 0,
        arg2: address,
        arg3: abi::message::sizes(total, request_size, 0),
    };
    // The test region lies outside the memory Rust code uses; a refusal
    // returns registers no kernel returns, which no check accepts.
    raw::trap_at(args, None).unwrap_or(NOT_TRAPPED)
}

fn close(_: &mut Fixture) -> Outcome {
    let event = event()?.into_raw();
    let request = descriptor_request(event, 0);
    expect_done(
        "CLOSE of an event",
        kcall(KernelFunction::Close, Descriptor::NULL, &request, 64).0,
    )?;
    expect_error(
        "CLOSE of it again",
        kcall(KernelFunction::Close, Descriptor::NULL, &request, 64).0,
        Error::BadDescriptor,
    )?;
    expect_error(
        "CLOSE of descriptor 0",
        kcall(
            KernelFunction::Close,
            Descriptor::NULL,
            &descriptor_request(Descriptor::NULL, 0),
            64,
        )
        .0,
        Error::BadDescriptor,
    )
}

fn duplicate_reference(_: &mut Fixture) -> Outcome {
    let first = event()?;
    let second = event()?;
    let third = event()?;
    let hole = second.descriptor();
    second.close().setup("CLOSE")?;
    let rights = Rights(Rights::SIGNAL.0 | Rights::WAIT.0);
    let (result, buffer) = kcall(
        KernelFunction::Duplicate,
        Descriptor::NULL,
        &descriptor_request(first.descriptor(), rights.0),
        64,
    );
    expect_registers("DUPLICATE", result, TrapArgs::completed(0, 0, 8, 1))?;
    let slot = buffer.slot(8, 0).setup("the reply slot")?;
    let copy = OwnedDescriptor::from_raw(Descriptor(slot.descriptor)).setup("the copy")?;
    expect_eq(
        "the reply slot",
        slot,
        DescriptorSlot {
            descriptor: hole.0,
            rights: rights.0,
            mode: TransferMode::Copy as u32,
            reserved: 0,
        },
    )?;
    expect_info("the copy", copy.descriptor(), ObjectKind::Event, rights)?;
    kernel::event_signal(copy.descriptor()).setup("EVENT_SIGNAL through the copy")?;
    expect_registers(
        "EVENT_WAIT on the original after a signal through the copy",
        kcall(KernelFunction::EventWait, first.descriptor(), &[], 64).0,
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    drop(third);
    Ok(())
}

fn descriptor_kinds(fixture: &mut Fixture) -> Outcome {
    // ABI.md §7: the first process starts with its three capabilities.
    expect_eq(
        "the first process's initial descriptor count (rdx at entry)",
        fixture.initial_descriptors,
        FIRST_PROCESS_DESCRIPTORS,
    )?;
    for (what, descriptor, kind) in [
        (
            "descriptor 1 (process control)",
            FIRST_PROCESS_CONTROL,
            ObjectKind::ProcessControl,
        ),
        (
            "descriptor 2 (boot archive)",
            FIRST_BOOT_ARCHIVE,
            ObjectKind::BootArchive,
        ),
        (
            "descriptor 3 (machine control)",
            FIRST_MACHINE_CONTROL,
            ObjectKind::MachineControl,
        ),
    ] {
        expect_info(what, descriptor, kind, Rights::CAPABILITY)?;
    }
    let process = fixture.server_process()?;
    let door = ScratchDoor::new()?;
    expect_info(
        "a user door's owner reference",
        door.owner(),
        ObjectKind::UserDoor,
        Rights::DOOR_OWNER,
    )?;
    expect_info(
        "a user door's client reference",
        door.client(),
        ObjectKind::UserDoor,
        Rights::DOOR_CLIENT,
    )?;
    let system = kernel::door_create(DoorKind::System, 3).setup("DOOR_CREATE (system)")?;
    expect_info(
        "a system door's owner reference",
        system.owner.descriptor(),
        ObjectKind::SystemDoor,
        Rights::DOOR_OWNER,
    )?;
    expect_info(
        "a system door's client reference",
        system.client.descriptor(),
        ObjectKind::SystemDoor,
        Rights::DOOR_CLIENT,
    )?;
    let event = event()?;
    expect_info(
        "an event",
        event.descriptor(),
        ObjectKind::Event,
        Rights::EVENT,
    )?;
    expect_info(
        "a process handle",
        process,
        ObjectKind::Process,
        Rights::HANDLE,
    )?;
    let thread = userlib::spawn_thread(|| {}, 16 * 1024).setup("THREAD_CREATE")?;
    expect_info(
        "a thread handle",
        thread.descriptor(),
        ObjectKind::Thread,
        Rights::HANDLE,
    )
}

fn thread_does_ipc(fixture: &mut Fixture) -> Outcome {
    let server = fixture.server()?;
    let echo = fixture.echo()?;
    // Made here: a worker that allocated before its trap could be
    // held up on the heap lock or a MAP_ANONYMOUS and lose its turn.
    let mut buffer = Buffer::new();
    let worker = spawn_worker(move || {
        buffer.put_value(
            0,
            &ReplyBytesRequest {
                length: 8,
                mode: ipc_test_helper::reply_mode::REPLY_RECEIVE,
            },
        );
        let helper = buffer.send(REPLY_BYTES, server, abi::message::sizes(64, 4, 0));
        let mut message = Message::new();
        let echoed = message
            .push_data(b"from a second thread")
            .ok()
            .and_then(|m| userlib::call(echo, echo::ECHO, m).ok())
            .map(|reply| reply.ret_val);
        (helper, echoed, message.payload() == b"from a second thread")
    })?;
    let (helper, echoed, same) = worker.join()?;
    let word = |at: usize| {
        u32::from_le_bytes(core::array::from_fn(|i| {
            ipc_test_helper::pattern_byte(at + i)
        }))
    };
    expect_registers(
        "the thread's call of the helper",
        helper,
        TrapArgs::completed(word(0), word(4), 8, 0),
    )?;
    expect_eq(
        "the thread's ECHO (msgRetVal, same data)",
        (echoed, same),
        (Some(20), true),
    )
}

/// Where a wrongly created test thread would run: it only yields.
extern "C" fn parked(_: u64) -> ! {
    loop {
        let _ = kernel::yield_now();
    }
}

fn thread_create_errors(_: &mut Fixture) -> Outcome {
    let stack = kernel::map_anonymous(0, 4 * PAGE, RW).setup("MAP_ANONYMOUS of a stack")?;
    let top = stack + 4 * PAGE;
    let entry = (parked as *const ()).expose_provenance() as u64;
    let request = |entry: u64, stack_top: u64, priority: u32| {
        ThreadCreateRequest::new(entry, stack_top, 0, priority)
    };
    let cases = [
        ("priority 32", request(entry, top, 32)),
        (
            "priority 17, above the caller's 16",
            request(entry, top, DEFAULT_PRIORITY + 1),
        ),
        (
            "a stack top 8 bytes off alignment",
            request(entry, top - 8, DEFAULT_PRIORITY),
        ),
        (
            "a kernel-half stack",
            request(entry, 0xffff_8000_0000_0000, DEFAULT_PRIORITY),
        ),
        (
            "a kernel-half entry",
            request(0xffff_8000_0000_0000, top, DEFAULT_PRIORITY),
        ),
        (
            "a non-canonical entry",
            request(0x0000_8000_0000_0000, top, DEFAULT_PRIORITY),
        ),
    ];
    let mut outcome = Ok(());
    for (what, request) in cases {
        let (result, buffer) = kcall(
            KernelFunction::ThreadCreate,
            Descriptor::NULL,
            request.as_bytes(),
            64,
        );
        let created = !result.is_kernel_failure();
        if created && let Some(slot) = buffer.slot(8, 0) {
            drop(OwnedDescriptor::from_raw(Descriptor(slot.descriptor)));
        }
        let checked = expect_error(
            format!("THREAD_CREATE with {what}"),
            result,
            Error::InvalidArgument,
        );
        if created {
            // A thread may run on the stack now: keep it mapped.
            return checked;
        }
        outcome = outcome.and(checked);
    }
    let _ = kernel::unmap(stack, 4 * PAGE);
    outcome
}

fn yield_runs_others(_: &mut Fixture) -> Outcome {
    // A timer tick between THREAD_CREATE and YIELD can run the new thread
    // early; such a try proves nothing and is made again.
    for _ in 0..5 {
        let ran = Arc::new(AtomicBool::new(false));
        let theirs = Arc::clone(&ran);
        let worker = spawn_worker(move || theirs.store(true, Ordering::SeqCst))?;
        let before = ran.load(Ordering::SeqCst);
        let result = kcall(KernelFunction::Yield, Descriptor::NULL, &[], 64).0;
        let after = ran.load(Ordering::SeqCst);
        worker.join()?;
        expect_done("YIELD", result)?;
        if !before {
            return expect_eq("whether the new thread ran during YIELD", after, true);
        }
    }
    Err(Failure::new(
        "five tries",
        "one where the new thread had not run before YIELD",
        "it had run each time",
    ))
}

fn map_anonymous(_: &mut Fixture) -> Outcome {
    let (result, buffer) = kcall(
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        &map_request(0, 2 * PAGE, RW),
        64,
    );
    expect_registers(
        "MAP_ANONYMOUS of 2 pages",
        result,
        TrapArgs::completed(0, 0, 16, 0),
    )?;
    let address: u64 = buffer.get(REPLY_PAYLOAD_OFFSET).setup("the address")?;
    ensure(
        "the address MAP_ANONYMOUS chose",
        address.is_multiple_of(PAGE)
            && address >= USER_IMAGE_BASE
            && address + 2 * PAGE <= USER_END,
        "a page-aligned user address",
        format!("{address:#x}"),
    )?;
    let zeroed = (0..2 * PAGE).all(|offset| peek(address + offset) == Some(0));
    for offset in (0..2 * PAGE).step_by(511) {
        poke(address + offset, offset as u8 | 1);
    }
    let kept = (0..2 * PAGE)
        .step_by(511)
        .all(|offset| peek(address + offset) == Some(offset as u8 | 1));
    kernel::unmap(address, 2 * PAGE).setup("UNMAP")?;
    expect_eq(
        "the new memory (zeroed, keeps what is written)",
        (zeroed, kept),
        (true, true),
    )?;
    let (result, buffer) = kcall(
        KernelFunction::MapAnonymous,
        Descriptor::NULL,
        &map_request(TEST_REGION, PAGE, RW),
        64,
    );
    let placed: Option<u64> = buffer.get(REPLY_PAYLOAD_OFFSET);
    let _ = kernel::unmap(TEST_REGION, PAGE);
    expect_registers(
        "MAP_ANONYMOUS at a given address",
        result,
        TrapArgs::completed(0, 0, 16, 0),
    )?;
    expect_eq("where it mapped", placed, Some(TEST_REGION))
}

fn map_anonymous_errors(_: &mut Fixture) -> Outcome {
    kernel::map_anonymous(TEST_REGION, PAGE, RW).setup("MAP_ANONYMOUS")?;
    let cases: [(&str, u64, u64, Error); 8] = [
        (
            "over a mapped page",
            TEST_REGION,
            PAGE,
            Error::BadAddressRange,
        ),
        (
            "over the page before and a mapped one",
            TEST_REGION - PAGE,
            2 * PAGE,
            Error::BadAddressRange,
        ),
        (
            "in the kernel half",
            0xffff_8000_0000_0000,
            PAGE,
            Error::BadAddressRange,
        ),
        (
            "across the end of the user half",
            USER_END - PAGE,
            2 * PAGE,
            Error::BadAddressRange,
        ),
        (
            "wrapping around",
            0xffff_ffff_ffff_f000,
            2 * PAGE,
            Error::BadAddressRange,
        ),
        (
            "at an unaligned address",
            TEST_REGION + 8 * PAGE + 16,
            PAGE,
            Error::InvalidArgument,
        ),
        ("of an unaligned length", 0, 100, Error::InvalidArgument),
        ("of length 0", 0, 0, Error::InvalidArgument),
    ];
    let mut outcome = Ok(());
    for (what, address, length, error) in cases {
        let (result, buffer) = kcall(
            KernelFunction::MapAnonymous,
            Descriptor::NULL,
            &map_request(address, length, RW),
            64,
        );
        if !result.is_kernel_failure()
            && let Some(mapped) = buffer.get::<u64>(REPLY_PAYLOAD_OFFSET)
        {
            let _ = kernel::unmap(mapped, length.next_multiple_of(PAGE));
        }
        outcome = outcome.and(expect_error(format!("MAP_ANONYMOUS {what}"), result, error));
    }
    // x86_64 cannot map a page that is not readable: protection needs READ.
    for (function, bits) in [
        (KernelFunction::MapAnonymous, 0),
        (KernelFunction::MapAnonymous, protection::WRITE),
        (KernelFunction::MapAnonymous, protection::EXECUTE),
        (KernelFunction::Protect, 0),
        (KernelFunction::Protect, protection::WRITE),
    ] {
        let address = if function == KernelFunction::Protect {
            TEST_REGION
        } else {
            0
        };
        let (result, buffer) = kcall(
            function,
            Descriptor::NULL,
            &map_request(address, PAGE, bits),
            64,
        );
        if function == KernelFunction::MapAnonymous
            && !result.is_kernel_failure()
            && let Some(mapped) = buffer.get::<u64>(REPLY_PAYLOAD_OFFSET)
        {
            let _ = kernel::unmap(mapped, PAGE);
        }
        outcome = outcome.and(expect_error(
            format!("{function:?} with protection {bits:#x}"),
            result,
            Error::InvalidArgument,
        ));
    }
    let _ = kernel::unmap(TEST_REGION, PAGE);
    outcome
}

fn unmap(_: &mut Fixture) -> Outcome {
    kernel::map_anonymous(TEST_REGION, 2 * PAGE, RW).setup("MAP_ANONYMOUS")?;
    expect_done(
        "UNMAP of the second page",
        kcall(
            KernelFunction::Unmap,
            Descriptor::NULL,
            &map_request(TEST_REGION + PAGE, PAGE, 0),
            64,
        )
        .0,
    )?;
    expect_done(
        "UNMAP of both pages (one already unmapped)",
        kcall(
            KernelFunction::Unmap,
            Descriptor::NULL,
            &map_request(TEST_REGION, 2 * PAGE, 0),
            64,
        )
        .0,
    )?;
    expect_error(
        "DESCRIPTOR_INFO with its buffer in the unmapped range",
        at(KernelFunction::DescriptorInfo, 8, TEST_REGION, 64),
        Error::BadBuffer,
    )?;
    expect_eq(
        "MAP_ANONYMOUS of the range again",
        kernel::map_anonymous(TEST_REGION, 2 * PAGE, RW),
        Ok(TEST_REGION),
    )?;
    let errors: [(&str, [u8; 24], Error); 3] = [
        (
            "UNMAP with protection bits",
            map_request(TEST_REGION, PAGE, RW),
            Error::ReservedBits,
        ),
        (
            "UNMAP of an unaligned range",
            map_request(TEST_REGION + 1, PAGE, 0),
            Error::InvalidArgument,
        ),
        (
            "UNMAP in the kernel half",
            map_request(0xffff_8000_0000_0000, PAGE, 0),
            Error::BadAddressRange,
        ),
    ];
    let mut outcome = Ok(());
    for (what, request, error) in errors {
        let result = kcall(KernelFunction::Unmap, Descriptor::NULL, &request, 64).0;
        outcome = outcome.and(expect_error(what, result, error));
    }
    let _ = kernel::unmap(TEST_REGION, 2 * PAGE);
    outcome
}

/// Far from everything else in the user half: an UNMAP from [`TEST_REGION`]
/// to here spans 2^35 pages, which a kernel walking addresses rather than
/// page tables would not finish.
const FAR_REGION: u64 = 0x0000_6000_0000_0000;

fn unmap_far_range(_: &mut Fixture) -> Outcome {
    const GIB: u64 = 1 << 30;
    let before = read_counters()?.free_frames;
    // Pages a GiB apart each need a page table of their own, the far one a
    // whole path of tables.
    for index in 0..16 {
        let address = TEST_REGION + index * GIB;
        kernel::map_anonymous(address, PAGE, RW).setup("MAP_ANONYMOUS")?;
        poke(address, 1);
    }
    kernel::map_anonymous(FAR_REGION, PAGE, RW).setup("MAP_ANONYMOUS far")?;
    poke(FAR_REGION, 1);
    expect_done(
        "UNMAP from the first page to past the far one",
        kcall(
            KernelFunction::Unmap,
            Descriptor::NULL,
            &map_request(TEST_REGION, FAR_REGION + PAGE - TEST_REGION, 0),
            64,
        )
        .0,
    )?;
    for address in [TEST_REGION, TEST_REGION + 15 * GIB, FAR_REGION] {
        expect_error(
            format!("DESCRIPTOR_INFO with its buffer at {address:#x}, unmapped"),
            at(KernelFunction::DescriptorInfo, 8, address, 64),
            Error::BadBuffer,
        )?;
    }
    expect_eq(
        "free frames after mapping 17 pages and unmapping them (their page tables too)",
        read_counters()?.free_frames,
        before,
    )
}

fn protect(_: &mut Fixture) -> Outcome {
    kernel::map_anonymous(TEST_REGION, PAGE, RW).setup("MAP_ANONYMOUS")?;
    poke(TEST_REGION + 100, 0x42);
    let result = (|| {
        expect_done(
            "PROTECT to READ",
            kcall(
                KernelFunction::Protect,
                Descriptor::NULL,
                &map_request(TEST_REGION, PAGE, protection::READ),
                64,
            )
            .0,
        )?;
        expect_eq(
            "the byte written before PROTECT",
            peek(TEST_REGION + 100),
            Some(0x42),
        )?;
        expect_error(
            "DESCRIPTOR_INFO with its buffer in the read-only page",
            at(KernelFunction::DescriptorInfo, 8, TEST_REGION, 64),
            Error::BadBuffer,
        )?;
        expect_done(
            "PROTECT to READ|WRITE",
            kcall(
                KernelFunction::Protect,
                Descriptor::NULL,
                &map_request(TEST_REGION, PAGE, RW),
                64,
            )
            .0,
        )?;
        let event = event()?;
        for (index, byte) in event.descriptor().0.to_le_bytes().iter().enumerate() {
            poke(TEST_REGION + 200 + index as u64, *byte);
        }
        expect_registers(
            "DESCRIPTOR_INFO with its buffer in the page made writable again",
            at(KernelFunction::DescriptorInfo, 8, TEST_REGION + 200, 64),
            TrapArgs::completed(0, 0, 16, 0),
        )?;
        expect_eq(
            "the kind the kernel wrote there",
            peek(TEST_REGION + 200 + REPLY_PAYLOAD_OFFSET as u64),
            Some(ObjectKind::Event as u8),
        )?;
        expect_error(
            "PROTECT of an unmapped page",
            kcall(
                KernelFunction::Protect,
                Descriptor::NULL,
                &map_request(TEST_REGION + PAGE, PAGE, protection::READ),
                64,
            )
            .0,
            Error::BadAddressRange,
        )?;
        expect_error(
            "PROTECT with protection bit 4",
            kcall(
                KernelFunction::Protect,
                Descriptor::NULL,
                &map_request(TEST_REGION, PAGE, protection::READ | 1 << 4),
                64,
            )
            .0,
            Error::ReservedBits,
        )
    })();
    let _ = kernel::unmap(TEST_REGION, PAGE);
    result
}

fn write_to_read_only_faults(_: &mut Fixture) -> Outcome {
    let event = event()?;
    let helper = spawn_helper(
        role::FAULT,
        &[DescriptorSlot::copy(event.descriptor(), Rights::EVENT)],
    )?;
    let mut buffer = Buffer::new();
    let result = buffer.send(
        ipc_test_helper::INSPECT,
        helper.client(),
        abi::message::sizes(64, 0, 0),
    );
    if !result.is_kernel_failure() {
        let report: FaultReport = buffer.get(REPLY_PAYLOAD_OFFSET).unwrap_or_default();
        let step = match report.step {
            fault_step::MAP => "MAP_ANONYMOUS failed",
            fault_step::PROTECT => "PROTECT failed",
            fault_step::READ_BACK => "reading the page back after PROTECT gave another byte",
            fault_step::SIGNAL => "EVENT_SIGNAL failed",
            fault_step::SURVIVED => "the helper survived its write to the read-only page",
            _ => "an unknown report",
        };
        return Err(Failure::new(
            "the call on the faulting helper",
            "PEER_DIED (the process ended at the write)",
            format!("a reply: {step} (error {})", report.error),
        ));
    }
    expect_error("the call on the faulting helper", result, Error::PeerDied)?;
    // Its signal (just before the write) and ours: one left after a wait.
    kernel::event_signal(event.descriptor()).setup("EVENT_SIGNAL")?;
    let waited = kcall(KernelFunction::EventWait, event.descriptor(), &[], 64).0;
    if waited == TrapArgs::completed(1, 0, 8, 0) {
        let _ = kernel::event_wait(event.descriptor());
    }
    expect_registers(
        "EVENT_WAIT after the helper's and our signal",
        waited,
        TrapArgs::completed(1, 0, 8, 0),
    )?;
    let mut buffer = Buffer::new();
    expect_error(
        "a second call on the dead helper's door",
        buffer.send(
            ipc_test_helper::INSPECT,
            helper.client(),
            abi::message::sizes(64, 0, 0),
        ),
        Error::PeerDied,
    )
}

fn event_counts(_: &mut Fixture) -> Outcome {
    let (result, buffer) = kcall(KernelFunction::EventCreate, Descriptor::NULL, &[], 64);
    expect_registers("EVENT_CREATE", result, TrapArgs::completed(0, 0, 8, 1))?;
    let slot = buffer.slot(8, 0).setup("the reply slot")?;
    let event = OwnedDescriptor::from_raw(Descriptor(slot.descriptor)).setup("the event")?;
    expect_eq(
        "the reply slot (rights, mode, reserved)",
        (slot.rights, slot.mode, slot.reserved),
        (Rights::EVENT.0, TransferMode::Copy as u32, 0),
    )?;
    let number = event.descriptor();
    for round in 1..=2 {
        expect_done(
            &format!("EVENT_SIGNAL {round}"),
            kcall(KernelFunction::EventSignal, number, &[], 64).0,
        )?;
    }
    expect_registers(
        "the first EVENT_WAIT (one left)",
        kcall(KernelFunction::EventWait, number, &[], 64).0,
        TrapArgs::completed(1, 0, 8, 0),
    )?;
    expect_registers(
        "the second EVENT_WAIT (none left)",
        kcall(KernelFunction::EventWait, number, &[], 64).0,
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    expect_error(
        "EVENT_SIGNAL with data",
        kcall(KernelFunction::EventSignal, number, &[0; 4], 64).0,
        Error::BadSizes,
    )
}

fn event_waiters(_: &mut Fixture) -> Outcome {
    let event = event()?;
    let number = event.descriptor();
    let order = Arc::new(AtomicU32::new(0));
    // No heap use in a waiter before its wait (each gets its buffer made
    // here): an allocation could trap (MAP_ANONYMOUS) or wait for the heap
    // lock, and give a timer tick a chance to reorder the waiters.
    let waiter = |order: Arc<AtomicU32>, mut buffer: Buffer| {
        move || {
            let result = buffer.kernel_call(KernelFunction::EventWait, number, &[], 64);
            (result, order.fetch_add(1, Ordering::SeqCst) + 1)
        }
    };
    let first = spawn_worker(waiter(Arc::clone(&order), Buffer::new()))?;
    let second = spawn_worker(waiter(Arc::clone(&order), Buffer::new()))?;
    // Both run until they block in EVENT_WAIT, the first one first.
    kernel::yield_now().setup("YIELD")?;
    let woken_early = order.load(Ordering::SeqCst);
    kernel::event_signal(number).setup("the first EVENT_SIGNAL")?;
    yield_until(100, || order.load(Ordering::SeqCst) >= 1);
    // Give a wrongly woken second waiter the chance to show up too.
    kernel::yield_now().setup("YIELD")?;
    let woken_by_one = order.load(Ordering::SeqCst);
    kernel::event_signal(number).setup("the second EVENT_SIGNAL")?;
    let (first_result, first_rank) = first.join()?;
    let (second_result, second_rank) = second.join()?;
    expect_eq(
        "waiters woken (before any signal, after the first)",
        (woken_early, woken_by_one),
        (0, 1),
    )?;
    expect_registers(
        "the first waiter's EVENT_WAIT",
        first_result,
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    expect_registers(
        "the second waiter's EVENT_WAIT",
        second_result,
        TrapArgs::completed(0, 0, 8, 0),
    )?;
    expect_eq(
        "the order the waiters were woken in",
        (first_rank, second_rank),
        (1, 2),
    )
}

/// COUNTERS by raw trap.
fn read_counters() -> Result<KernelCounters, Failure> {
    let (result, buffer) = kcall(KernelFunction::Counters, Descriptor::NULL, &[], 64);
    expect_registers(
        "COUNTERS",
        result,
        TrapArgs::completed(
            0,
            0,
            (REPLY_PAYLOAD_OFFSET + size_of::<KernelCounters>()) as u16,
            0,
        ),
    )?;
    buffer.get(REPLY_PAYLOAD_OFFSET).setup("the counters")
}

fn counters(fixture: &mut Fixture) -> Outcome {
    fixture.server()?;
    settle();
    let before = read_counters()?;
    ensure(
        "COUNTERS",
        before.processes >= 2
            && before.threads >= before.processes
            && before.objects >= 1
            && before.descriptors >= 1
            && before.charged_bytes > 0
            && before.free_frames > 0,
        "at least 2 processes, a thread each, objects, descriptors, charges and free frames",
        format!("{before:?}"),
    )?;
    let event = event()?;
    let with = read_counters()?;
    event.close().setup("CLOSE")?;
    let after = read_counters()?;
    let counts = |c: &KernelCounters| (c.processes, c.threads, c.objects, c.descriptors);
    expect_eq(
        "processes, threads, objects, descriptors with one event more",
        counts(&with),
        (
            before.processes,
            before.threads,
            before.objects + 1,
            before.descriptors + 1,
        ),
    )?;
    ensure(
        "the charges with one event more",
        with.charged_bytes > before.charged_bytes,
        "more than before",
        format!("{} then {}", before.charged_bytes, with.charged_bytes),
    )?;
    expect_eq(
        "processes, threads, objects, descriptors, charges after CLOSE",
        (counts(&after), after.charged_bytes),
        (counts(&before), before.charged_bytes),
    )
}

fn debug_write(_: &mut Fixture) -> Outcome {
    let text = b"ipc-test: (DEBUG_WRITE reaches the console)\n";
    expect_done(
        "DEBUG_WRITE",
        kcall(KernelFunction::DebugWrite, Descriptor::NULL, text, 64).0,
    )
}

fn door_create(_: &mut Fixture) -> Outcome {
    for (system, kind) in [(0, ObjectKind::UserDoor), (1, ObjectKind::SystemDoor)] {
        let request = DoorCreateRequest::with_kind_number(system, 7);
        let (result, buffer) = kcall(
            KernelFunction::DoorCreate,
            FIRST_PROCESS_CONTROL,
            request.as_bytes(),
            64,
        );
        expect_registers(
            format!("DOOR_CREATE (system = {system})"),
            result,
            TrapArgs::completed(0, 0, 8, 2),
        )?;
        let slots: Vec<DescriptorSlot> = (0..2).filter_map(|i| buffer.slot(8, i)).collect();
        let owned: Vec<OwnedDescriptor> = slots
            .iter()
            .filter_map(|slot| OwnedDescriptor::from_raw(Descriptor(slot.descriptor)))
            .collect();
        expect_eq(
            "the reply slots' rights and modes",
            slots.iter().map(|s| (s.rights, s.mode)).collect::<Vec<_>>(),
            alloc::vec![
                (Rights::DOOR_OWNER.0, TransferMode::Copy as u32),
                (Rights::DOOR_CLIENT.0, TransferMode::Copy as u32),
            ],
        )?;
        let [owner, client] = owned.as_slice() else {
            return Err(Failure::new(
                "the reply slots",
                "two descriptors",
                owned.len(),
            ));
        };
        expect_info(
            "the owner reference",
            owner.descriptor(),
            kind,
            Rights::DOOR_OWNER,
        )?;
        expect_info(
            "the client reference",
            client.descriptor(),
            kind,
            Rights::DOOR_CLIENT,
        )?;
    }
    let request = DoorCreateRequest::with_kind_number(2, 0);
    expect_error(
        "DOOR_CREATE of kind 2",
        kcall(
            KernelFunction::DoorCreate,
            FIRST_PROCESS_CONTROL,
            request.as_bytes(),
            64,
        )
        .0,
        Error::InvalidArgument,
    )
}

/// SPAWN's request: header, name, arguments.
fn spawn_request(name: &str, arguments: &[u8]) -> Vec<u8> {
    let header = SpawnRequest::with_lengths(name.len() as u32, arguments.len() as u32);
    let mut request = Vec::new();
    request.extend_from_slice(header.as_bytes());
    request.extend_from_slice(name.as_bytes());
    request.extend_from_slice(arguments);
    request
}

fn spawn(_: &mut Fixture) -> Outcome {
    let door = kernel::door_create(DoorKind::User, 0).setup("DOOR_CREATE")?;
    let mut buffer = Buffer::new();
    let request = spawn_request(ipc_test_helper::PROGRAM, role::EXIT_ON_CALL.as_bytes());
    buffer.put_value(0, &request[..]);
    let data = request.len() as u16;
    buffer.put_slot_of(
        data,
        0,
        DescriptorSlot::moving(door.owner.descriptor(), Rights::DOOR_OWNER),
    );
    let result = buffer.send(
        KernelFunction::Spawn.function(),
        FIRST_PROCESS_CONTROL,
        abi::message::sizes(MAX_TOTAL_SIZE, data, 1),
    );
    expect_registers("SPAWN of a helper", result, TrapArgs::completed(0, 0, 8, 1))?;
    let _ = door.owner.into_raw();
    let slot = buffer.slot(8, 0).setup("the reply slot")?;
    let process = OwnedDescriptor::from_raw(Descriptor(slot.descriptor)).setup("the process")?;
    expect_eq(
        "the reply slot (rights, mode)",
        (slot.rights, slot.mode),
        (Rights::HANDLE.0, TransferMode::Copy as u32),
    )?;
    expect_info(
        "the process handle",
        process.descriptor(),
        ObjectKind::Process,
        Rights::HANDLE,
    )?;
    let mut call = Buffer::new();
    expect_error(
        "a call on the child's door (it exits on the first call)",
        call.send(
            REPLY_BYTES,
            door.client.descriptor(),
            abi::message::sizes(64, 0, 0),
        ),
        Error::PeerDied,
    )?;
    let too_long = alloc::vec![b'x'; MAX_ARGUMENT_BYTES + 1];
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "a program not in the boot archive",
            spawn_request("no-such-program", &[]),
        ),
        (
            "an entry that is not an ELF (system.toml)",
            spawn_request("system.toml", &[]),
        ),
        (
            "1025 argument bytes",
            spawn_request(ipc_test_helper::PROGRAM, &too_long),
        ),
    ];
    for (what, request) in cases {
        let (result, buffer) = kcall(
            KernelFunction::Spawn,
            FIRST_PROCESS_CONTROL,
            &request,
            MAX_TOTAL_SIZE,
        );
        if !result.is_kernel_failure()
            && let Some(slot) = buffer.slot(8, 0)
        {
            drop(OwnedDescriptor::from_raw(Descriptor(slot.descriptor)));
        }
        expect_error(format!("SPAWN of {what}"), result, Error::InvalidArgument)?;
    }
    Ok(())
}

/// ARCHIVE_READ's request: header, name.
fn archive_request(name: &str, offset: u64) -> Vec<u8> {
    let header = ArchiveReadRequest::with_name_length(name.len() as u32, offset);
    let mut request = Vec::new();
    request.extend_from_slice(header.as_bytes());
    request.extend_from_slice(name.as_bytes());
    request
}

fn archive_read(_: &mut Fixture) -> Outcome {
    let name = ipc_test_helper::PROGRAM;
    let read = |offset: u64, total: u16| {
        kcall(
            KernelFunction::ArchiveRead,
            FIRST_BOOT_ARCHIVE,
            &archive_request(name, offset),
            total,
        )
    };
    // The reply: msgRetVal, msgErrno, the file's size, then the bytes.
    let header = REPLY_PAYLOAD_OFFSET + 8;
    let (result, first) = read(0, 64);
    expect_registers(
        "ARCHIVE_READ of the helper from 0 into 64 bytes",
        result,
        TrapArgs::completed(0, 0, 64, 0),
    )?;
    expect_eq(
        "msgRetVal and msgErrno in the buffer",
        first.get::<[u32; 2]>(0),
        Some([0, 0]),
    )?;
    // A program is an ELF64 executable (ABI.md §7): magic, class 2, data 1.
    expect_eq(
        "the first bytes of the file",
        &first.bytes()[header..header + 6],
        &[0x7f, b'E', b'L', b'F', 2, 1][..],
    )?;
    let size: u64 = first.get(REPLY_PAYLOAD_OFFSET).setup("the size")?;
    ensure(
        "the file's size",
        size > 48,
        "more than the 48 bytes read",
        size,
    )?;
    // The request (16 + 15 bytes) must fit the buffer too: 40 bytes leave
    // room for 24 of the file.
    let (result, middle) = read(5, 40);
    expect_registers(
        "ARCHIVE_READ from offset 5 into 40 bytes",
        result,
        TrapArgs::completed(0, 0, 40, 0),
    )?;
    expect_eq(
        "the 24 bytes from offset 5",
        &middle.bytes()[header..header + 24],
        &first.bytes()[header + 5..header + 29],
    )?;
    let (result, _) = read(size - 1, 64);
    expect_registers(
        "ARCHIVE_READ from the last byte",
        result,
        TrapArgs::completed(0, 0, header as u16 + 1, 0),
    )?;
    let (result, _) = read(size, 64);
    expect_registers(
        "ARCHIVE_READ from the end",
        result,
        TrapArgs::completed(0, 0, header as u16, 0),
    )?;
    expect_error(
        "ARCHIVE_READ of a file not in the boot archive",
        kcall(
            KernelFunction::ArchiveRead,
            FIRST_BOOT_ARCHIVE,
            &archive_request("no-such-file", 0),
            64,
        )
        .0,
        Error::InvalidArgument,
    )
}
