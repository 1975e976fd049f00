//! The memory functions (ABI.md §6, its table and "Memory"): MAP_ANONYMOUS,
//! UNMAP and PROTECT, their replies, their refusals, and what the memory is
//! afterwards (zeroed, kept, no longer a buffer, read-only, its frames and
//! page tables freed).
//!
//! Fixed-address mappings go to [`TEST_REGION`], far above where the
//! kernel places mappings (from `USER_MAP_BASE` up), and are unmapped when
//! the case ends whatever it did. A MAP_ANONYMOUS that should have been
//! refused but placed a mapping is undone at once.

use abi::kcall::{DescriptorRequest, KernelCounters, MapRequest, REPLY_PAYLOAD_OFFSET, protection};
use abi::process::{USER_END, USER_IMAGE_BASE};
use abi::{Descriptor, Error, KernelFunction, ObjectKind, TrapArgs};
use userlib::kernel;
use userlib::raw::{self, Buffer, RawPages};
use zerocopy::IntoBytes;

use super::super::kit::replied;
use crate::case::Outcome;
use crate::context::{Context, Failed};
use crate::expect::{Observed, function_bits, sizes};

/// A page.
pub const PAGE: u64 = abi::PAGE_BYTES;
/// READ | WRITE.
pub const RW: u32 = protection::READ | protection::WRITE;
/// Where the cases map at fixed addresses: nothing of the runner is there.
pub const TEST_REGION: u64 = 0x0000_3000_0000_0000;
/// Far from everything else in the user half: an UNMAP from
/// [`TEST_REGION`] to here spans 2^35 pages, which a kernel walking
/// addresses rather than page tables would not finish.
pub const FAR_REGION: u64 = 0x0000_6000_0000_0000;
/// The first address of the kernel half.
pub const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
const GIB: u64 = 1 << 30;

/// `function` (MAP_ANONYMOUS, UNMAP or PROTECT) with `request`, in a
/// buffer of 64 bytes: the observation, with the buffer.
pub fn call(context: &Context, function: KernelFunction, request: MapRequest) -> Outcome {
    super::kcall(
        context,
        function,
        Descriptor::NULL,
        request.as_bytes(),
        &[],
        64,
    )
}

/// The address in a MAP_ANONYMOUS reply (0 when there is none).
fn mapped_address(observed: &Observed) -> u64 {
    observed
        .buffer
        .get(REPLY_PAYLOAD_OFFSET..REPLY_PAYLOAD_OFFSET + 8)
        .map_or(0, |bytes| {
            u64::from_le_bytes(core::array::from_fn(|at| bytes[at]))
        })
}

/// [`call`] for a request that must be refused: a MAP_ANONYMOUS that
/// mapped anyway is unmapped again.
pub fn refused(context: &Context, function: KernelFunction, request: MapRequest) -> Outcome {
    let observed = call(context, function, request)?;
    if function == KernelFunction::MapAnonymous && observed.registers.arg0 != 0xffff_ffff {
        let _ = kernel::unmap(
            mapped_address(&observed),
            request.length.next_multiple_of(PAGE),
        );
    }
    Ok(observed)
}

/// More of a case's rule: `function` with `request` must fail with `error`.
pub fn also(
    context: &mut Context,
    what: &str,
    function: KernelFunction,
    request: MapRequest,
    error: Error,
) -> Result<(), Failed> {
    let observed = refused(context, function, request)?;
    context.check_registers(what, &observed.registers, &TrapArgs::error(error));
    Ok(())
}

/// Maps `pages` pages at [`TEST_REGION`] (unmapped when the case ends).
pub fn map_test_region(context: &mut Context, pages: u64) -> Result<RawPages, Failed> {
    context.unmap_at_end(TEST_REGION, pages * PAGE);
    kernel::map_anonymous(TEST_REGION, pages * PAGE, RW)?;
    Ok(RawPages::claim(TEST_REGION, pages * PAGE)?)
}

/// DESCRIPTOR_INFO whose buffer is at `address` (test memory, mapped or not).
pub fn info_at(address: u64) -> Result<TrapArgs, Failed> {
    let args = TrapArgs {
        arg0: function_bits(KernelFunction::DescriptorInfo as i32),
        arg1: 0,
        arg2: address,
        arg3: sizes(64, 8, 0),
    };
    Ok(raw::trap_at(args, None)?)
}

/// MSG-KCALL-058: MAP_ANONYMOUS where the kernel chooses.
pub fn map_anywhere(context: &mut Context) -> Outcome {
    let observed = call(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(0, 2 * PAGE, RW),
    )?;
    let address = mapped_address(&observed);
    context.bind("address", address);
    if observed.registers == replied(0, 0, 16, 0) {
        context.unmap_at_end(address, 2 * PAGE);
        context.check(
            address.is_multiple_of(PAGE)
                && address >= USER_IMAGE_BASE
                && address + 2 * PAGE <= USER_END,
            &alloc::format!(
                "the address MAP_ANONYMOUS chose, {address:#x}, is no page-aligned user address"
            ),
        );
        let pages = RawPages::claim(address, 2 * PAGE)?;
        let zeroed = pages
            .snapshot(address, 2 * PAGE as usize)
            .is_some_and(|bytes| bytes.iter().all(|byte| *byte == 0));
        context.check(zeroed, "the new pages do not read as zero");
        for offset in (0..2 * PAGE).step_by(511) {
            pages.write(address + offset, &[offset as u8 | 1]);
        }
        let kept = (0..2 * PAGE).step_by(511).all(|offset| {
            pages.snapshot(address + offset, 1) == Some(alloc::vec![offset as u8 | 1])
        });
        context.check(kept, "the new pages do not keep what is written");
    }
    Ok(context.observe_buffer(observed.registers, observed.msg_ptr, observed.buffer))
}

/// MSG-KCALL-059: MAP_ANONYMOUS at a given free address.
pub fn map_at(context: &mut Context) -> Outcome {
    context.unmap_at_end(TEST_REGION, PAGE);
    call(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(TEST_REGION, PAGE, RW),
    )
}

/// MSG-KCALL-060: over a mapped page.
pub fn map_over_mapped(context: &mut Context) -> Outcome {
    map_test_region(context, 1)?;
    context.unmap_at_end(TEST_REGION - PAGE, PAGE);
    also(
        context,
        "MAP_ANONYMOUS of the page before the mapped one and the mapped one",
        KernelFunction::MapAnonymous,
        MapRequest::new(TEST_REGION - PAGE, 2 * PAGE, RW),
        Error::BadAddressRange,
    )?;
    refused(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(TEST_REGION, PAGE, RW),
    )
}

/// MSG-KCALL-061: outside the user half.
pub fn map_outside(context: &mut Context) -> Outcome {
    also(
        context,
        "MAP_ANONYMOUS across the end of the user half",
        KernelFunction::MapAnonymous,
        MapRequest::new(USER_END - PAGE, 2 * PAGE, RW),
        Error::BadAddressRange,
    )?;
    also(
        context,
        "MAP_ANONYMOUS wrapping around the address space",
        KernelFunction::MapAnonymous,
        MapRequest::new(0xffff_ffff_ffff_f000, 2 * PAGE, RW),
        Error::BadAddressRange,
    )?;
    refused(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(KERNEL_HALF, PAGE, RW),
    )
}

/// MSG-KCALL-062: unaligned or empty.
pub fn map_unaligned(context: &mut Context) -> Outcome {
    context.unmap_at_end(TEST_REGION + 8 * PAGE, 2 * PAGE);
    also(
        context,
        "MAP_ANONYMOUS of an unaligned length (100)",
        KernelFunction::MapAnonymous,
        MapRequest::new(0, 100, RW),
        Error::InvalidArgument,
    )?;
    also(
        context,
        "MAP_ANONYMOUS of length 0",
        KernelFunction::MapAnonymous,
        MapRequest::new(0, 0, RW),
        Error::InvalidArgument,
    )?;
    refused(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(TEST_REGION + 8 * PAGE + 16, PAGE, RW),
    )
}

/// MSG-KCALL-063: a protection without READ.
pub fn without_read(context: &mut Context) -> Outcome {
    for bits in [protection::WRITE, protection::EXECUTE] {
        also(
            context,
            &alloc::format!("MAP_ANONYMOUS with protection {bits:#x}"),
            KernelFunction::MapAnonymous,
            MapRequest::new(0, PAGE, bits),
            Error::InvalidArgument,
        )?;
    }
    map_test_region(context, 1)?;
    for bits in [0, protection::WRITE] {
        also(
            context,
            &alloc::format!("PROTECT of a mapped page to protection {bits:#x}"),
            KernelFunction::Protect,
            MapRequest::new(TEST_REGION, PAGE, bits),
            Error::InvalidArgument,
        )?;
    }
    refused(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(0, PAGE, 0),
    )
}

/// MSG-KCALL-065: a protection bit that is not defined.
pub fn undefined_protection(context: &mut Context) -> Outcome {
    map_test_region(context, 1)?;
    also(
        context,
        "PROTECT of a mapped page with protection READ | bit 4",
        KernelFunction::Protect,
        MapRequest::new(TEST_REGION, PAGE, protection::READ | 1 << 4),
        Error::ReservedBits,
    )?;
    refused(
        context,
        KernelFunction::MapAnonymous,
        MapRequest::new(0, PAGE, protection::READ | 1 << 3),
    )
}

/// MSG-KCALL-066: UNMAP's reply, skipped pages, the range afterwards.
pub fn unmap(context: &mut Context) -> Outcome {
    map_test_region(context, 2)?;
    let second = call(
        context,
        KernelFunction::Unmap,
        MapRequest::new(TEST_REGION + PAGE, PAGE, 0),
    )?;
    context.check_registers(
        "UNMAP of the second page",
        &second.registers,
        &replied(0, 0, 8, 0),
    );
    let observed = call(
        context,
        KernelFunction::Unmap,
        MapRequest::new(TEST_REGION, 2 * PAGE, 0),
    )?;
    context.check_registers(
        "DESCRIPTOR_INFO with its buffer in the unmapped range",
        &info_at(TEST_REGION)?,
        &TrapArgs::error(Error::BadBuffer),
    );
    let again = kernel::map_anonymous(TEST_REGION, 2 * PAGE, RW);
    context.check(
        again == Ok(TEST_REGION),
        &alloc::format!("MAP_ANONYMOUS of the range again: {again:x?}"),
    );
    Ok(observed)
}

/// MSG-KCALL-067: UNMAP with protection bits unmaps nothing.
pub fn unmap_with_protection(context: &mut Context) -> Outcome {
    let page = map_test_region(context, 1)?;
    let event = context.event()?;
    page.write(
        TEST_REGION,
        DescriptorRequest::new(event, abi::Rights::NONE).as_bytes(),
    );
    let observed = call(
        context,
        KernelFunction::Unmap,
        MapRequest::new(TEST_REGION, PAGE, RW),
    )?;
    context.check_registers(
        "DESCRIPTOR_INFO with its buffer in the page afterwards (still mapped)",
        &info_at(TEST_REGION)?,
        &replied(0, 0, 16, 0),
    );
    Ok(observed)
}

/// MSG-KCALL-070: an UNMAP of 48 TiB holding 17 scattered pages.
pub fn unmap_far(context: &mut Context) -> Outcome {
    // Everything that takes memory is made before the first count: a
    // frame taken in between (by the heap, say) would show as a leak.
    context.unmap_at_end(TEST_REGION, FAR_REGION + PAGE - TEST_REGION);
    let mut counters = Buffer::new();
    let mut unmapper = Buffer::new();
    let mut free_frames = move || {
        let registers = counters.kernel_call(KernelFunction::Counters, Descriptor::NULL, &[], 64);
        let size = (REPLY_PAYLOAD_OFFSET + size_of::<KernelCounters>()) as u16;
        (registers == replied(0, 0, size, 0))
            .then(|| counters.get::<KernelCounters>(REPLY_PAYLOAD_OFFSET))
            .flatten()
            .map(|counted| counted.free_frames)
    };
    let before = free_frames();
    // Pages a GiB apart each need a page table of their own, the far one
    // a whole path of tables.
    let far = (0..16)
        .map(|index| TEST_REGION + index * GIB)
        .chain(core::iter::once(FAR_REGION));
    for address in far {
        kernel::map_anonymous(address, PAGE, RW)?;
        RawPages::claim(address, PAGE)?.write(address, &[1]);
    }
    let everything = MapRequest::new(TEST_REGION, FAR_REGION + PAGE - TEST_REGION, 0);
    let registers = unmapper.kernel_call(
        KernelFunction::Unmap,
        Descriptor::NULL,
        everything.as_bytes(),
        64,
    );
    let after = free_frames();
    for address in [TEST_REGION, TEST_REGION + 15 * GIB, FAR_REGION] {
        context.check_registers(
            &alloc::format!("DESCRIPTOR_INFO with its buffer at {address:#x}, unmapped"),
            &info_at(address)?,
            &TrapArgs::error(Error::BadBuffer),
        );
    }
    context.check(
        before.is_some() && before == after,
        &alloc::format!(
            "free frames before mapping the 17 pages {before:?}, after unmapping them {after:?} (their page tables must go too)"
        ),
    );
    Ok(context.observe(registers))
}

/// MSG-KCALL-071: PROTECT to READ and back.
pub fn protect(context: &mut Context) -> Outcome {
    let page = map_test_region(context, 1)?;
    let event = context.event()?;
    page.write(TEST_REGION + 100, &[0x42]);
    let at = TEST_REGION + 200;
    page.write(
        at,
        DescriptorRequest::new(event, abi::Rights::NONE).as_bytes(),
    );
    let observed = call(
        context,
        KernelFunction::Protect,
        MapRequest::new(TEST_REGION, PAGE, protection::READ),
    )?;
    context.check(
        page.snapshot(TEST_REGION + 100, 1) == Some(alloc::vec![0x42]),
        "the byte written before PROTECT is gone",
    );
    context.check_registers(
        "DESCRIPTOR_INFO with its buffer in the read-only page",
        &info_at(at)?,
        &TrapArgs::error(Error::BadBuffer),
    );
    let writable = kernel::protect(TEST_REGION, PAGE, RW);
    context.check(
        writable.is_ok(),
        &alloc::format!("PROTECT back to READ | WRITE: {writable:?}"),
    );
    context.check_registers(
        "DESCRIPTOR_INFO with its buffer in the page made writable again",
        &info_at(at)?,
        &replied(0, 0, 16, 0),
    );
    let kind = page.snapshot(at + REPLY_PAYLOAD_OFFSET as u64, 1);
    context.check(
        kind == Some(alloc::vec![ObjectKind::Event as u8]),
        &alloc::format!("the kind DESCRIPTOR_INFO wrote there: {kind:?}"),
    );
    Ok(observed)
}

/// MSG-KCALL-072: PROTECT of a range with a page not mapped.
pub fn protect_unmapped(context: &mut Context) -> Outcome {
    map_test_region(context, 1)?;
    context.unmap_at_end(TEST_REGION + PAGE, PAGE);
    also(
        context,
        "PROTECT of the mapped page and the unmapped one after it",
        KernelFunction::Protect,
        MapRequest::new(TEST_REGION, 2 * PAGE, protection::READ),
        Error::BadAddressRange,
    )?;
    call(
        context,
        KernelFunction::Protect,
        MapRequest::new(TEST_REGION + PAGE, PAGE, protection::READ),
    )
}
