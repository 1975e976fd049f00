//! The GDT, TSS and exception stacks of each CPU: the boot CPU's are a
//! static, an application processor's are allocated once and never freed.
//!
//! The segment order is fixed by SYSCALL/SYSRET (used from the IPC work on):
//! STAR takes the kernel CS with SS = CS + 8, and SYSRET to 64-bit mode loads
//! CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8, so the user data segment
//! must sit directly below the user code segment.

use core::cell::UnsafeCell;

use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, FS, GS, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// Kernel code selector (ring 0).
pub const KERNEL_CODE: SegmentSelector = SegmentSelector(0x08);
/// Kernel data/stack selector (ring 0).
pub const KERNEL_DATA: SegmentSelector = SegmentSelector(0x10);
/// User data/stack selector (ring 3, RPL 3).
pub const USER_DATA: SegmentSelector = SegmentSelector(0x18 | 3);
/// User code selector (ring 3, RPL 3).
pub const USER_CODE: SegmentSelector = SegmentSelector(0x20 | 3);
/// The TSS selector.
pub const TSS: SegmentSelector = SegmentSelector(0x28);

/// IST slot (1-based, as the IDT encodes it) of the double-fault stack.
pub const DOUBLE_FAULT_IST: u8 = 1;
/// IST slot of the NMI stack.
pub const NMI_IST: u8 = 2;
/// IST slot of the machine-check stack.
pub const MACHINE_CHECK_IST: u8 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

/// One CPU's descriptor tables and exception stacks: the boot CPU's is
/// [`BOOT_CPU`], each application processor gets its own ([`init_ap`]).
pub struct CpuTables {
    gdt: UnsafeCell<GlobalDescriptorTable>,
    tss: UnsafeCell<TssWithPorts>,
    ist_stacks: UnsafeCell<[Stack; 3]>,
}

/// Bytes of the I/O permission bitmap: a bit per port (set: the port
/// faults in ring 3), and the 0xFF byte the CPU requires after it.
const IO_BITMAP_BYTES: usize = 65536 / 8 + 1;

/// The TSS and, right behind it, its I/O permission bitmap (Intel SDM
/// vol. 1, 19.5.2): user code may use exactly the ports whose bit is clear.
#[repr(C)]
struct TssWithPorts {
    tss: TaskStateSegment,
    io_bitmap: [u8; IO_BITMAP_BYTES],
}

// SAFETY: each CPU touches only its own `CpuTables`, with interrupts disabled
// (the kernel is non-preemptible), so there is never concurrent access.
unsafe impl Sync for CpuTables {}

static BOOT_CPU: CpuTables = CpuTables {
    gdt: UnsafeCell::new(GlobalDescriptorTable::new()),
    tss: UnsafeCell::new(TssWithPorts {
        tss: tss_before_its_bitmap(),
        io_bitmap: [0xff; IO_BITMAP_BYTES],
    }),
    ist_stacks: UnsafeCell::new([const { Stack([0; IST_STACK_SIZE]) }; 3]),
};

/// A TSS whose I/O bitmap starts right after it.
const fn tss_before_its_bitmap() -> TaskStateSegment {
    let mut tss = TaskStateSegment::new();
    tss.iomap_base = size_of::<TaskStateSegment>() as u16;
    tss
}

/// Builds and loads the boot CPU's GDT and TSS and reloads every segment register.
pub fn init() {
    load(&BOOT_CPU);
}

/// Builds and loads the GDT and TSS of an application processor, in tables
/// of its own (allocated zeroed on the heap, then kept for good: a CPU
/// never goes offline).
pub fn init_ap(index: u64) {
    let zeroed = alloc::boxed::Box::<CpuTables>::new_zeroed();
    // SAFETY: every field of `CpuTables` is plain data for which all-zero
    // bytes are a valid value (a GDT of null entries, a TSS of zeroes,
    // zeroed stacks and bitmap).
    let mut tables = unsafe { zeroed.assume_init() };
    // An empty GDT still holds its null descriptor (a zeroed one would
    // append the kernel code segment at selector 0).
    *tables.gdt.get_mut() = GlobalDescriptorTable::new();
    let both = tables.tss.get_mut();
    both.tss.iomap_base = size_of::<TaskStateSegment>() as u16;
    both.io_bitmap.fill(0xff);
    let tables: &'static CpuTables = alloc::boxed::Box::leak(tables);
    load(tables);
    if let Some(slot) = TABLES.get(index as usize) {
        slot.store(
            core::ptr::from_ref(tables).cast_mut(),
            core::sync::atomic::Ordering::Release,
        );
    }
}

/// Each CPU's tables, by CPU index (null until it loaded them).
static TABLES: [core::sync::atomic::AtomicPtr<CpuTables>; super::smp::MAX_CPUS] =
    [const { core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()) }; super::smp::MAX_CPUS];

/// The tables of the CPU running this (the boot CPU's are the static).
fn this_cpu() -> &'static CpuTables {
    cpu_tables(super::syscall::cpu_index() as usize)
}

/// The tables of CPU `index` (the boot CPU's are the static).
fn cpu_tables(index: usize) -> &'static CpuTables {
    let tables = TABLES.get(index).map_or(core::ptr::null_mut(), |t| {
        t.load(core::sync::atomic::Ordering::Acquire)
    });
    if tables.is_null() {
        &BOOT_CPU
    } else {
        // SAFETY: a pointer stored by `load` to tables that live forever.
        unsafe { &*tables }
    }
}

fn load(tables: &'static CpuTables) {
    // SAFETY: called once per CPU, on that CPU, before anything else uses
    // these tables; nothing else holds a reference to them yet.
    let (gdt, tss, stacks) = unsafe {
        (
            &mut *tables.gdt.get(),
            &mut (*tables.tss.get()).tss,
            &mut *tables.ist_stacks.get(),
        )
    };
    for (slot, stack) in stacks.iter_mut().enumerate() {
        let top = VirtAddr::from_ptr(stack.0.as_ptr_range().end);
        tss.interrupt_stack_table[slot] = top;
    }
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    // SAFETY: the TSS and its bitmap live (and stay put) forever.
    let (tss_ref, bitmap) = unsafe {
        let both = &*tables.tss.get();
        (&both.tss, &both.io_bitmap[..])
    };
    let tss_descriptor = Descriptor::tss_segment_with_iomap(tss_ref, bitmap)
        .unwrap_or_else(|error| panic!("the TSS's I/O bitmap: {error:?}"));
    let tss_selector = gdt.append(tss_descriptor);
    assert_eq!(
        (kernel_code, kernel_data, user_data, user_code, tss_selector),
        (KERNEL_CODE, KERNEL_DATA, USER_DATA, USER_CODE, TSS),
        "the GDT's selectors"
    );
    // SAFETY: the GDT is a static; the selectors loaded next name the
    // descriptors just appended, with the privilege levels they were built for.
    unsafe {
        gdt.load_unsafe();
        CS::set_reg(KERNEL_CODE);
        SS::set_reg(KERNEL_DATA);
        DS::set_reg(KERNEL_DATA);
        ES::set_reg(KERNEL_DATA);
        FS::set_reg(SegmentSelector(0));
        GS::set_reg(SegmentSelector(0));
        load_tss(TSS);
    }
}

/// Where the running CPU's TSS keeps RSP0, the stack the CPU switches to
/// when an interrupt or exception arrives in ring 3: the per-CPU block
/// keeps it (`syscall.rs`), so a thread switch writes it without finding
/// the tables. The field is not 8-byte aligned (the TSS is packed).
///
/// By index, not through `this_cpu`: it is asked before GS points at the
/// CPU's block.
pub fn kernel_stack_slot(index: u64) -> *mut u64 {
    let tables = cpu_tables(index as usize);
    // SAFETY: only the address is taken (no reference to the packed
    // field); the tables live forever.
    unsafe { core::ptr::addr_of_mut!((*tables.tss.get()).tss.privilege_stack_table).cast::<u64>() }
}

/// Lets ring 3 use the ports `[first, first + count)` (`allowed`), or
/// makes them fault again.
pub fn set_port_access(first: u16, count: u16, allowed: bool) {
    // SAFETY: a CPU's bitmap is only touched by that CPU, with interrupts
    // disabled; the CPU reads it only on a user `in` / `out`.
    let bitmap = unsafe { &mut (*this_cpu().tss.get()).io_bitmap };
    for port in usize::from(first)..usize::from(first) + usize::from(count) {
        let bit = 1u8 << (port % 8);
        if allowed {
            bitmap[port / 8] &= !bit;
        } else {
            bitmap[port / 8] |= bit;
        }
    }
}
