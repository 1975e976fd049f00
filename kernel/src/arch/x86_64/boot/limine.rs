//! Limine boot: the protocol requests and the 64-bit entry point.
//!
//! We ask for base revision 3. Limine 8.2 knows revisions 0-2 only and then
//! boots us as revision 2 with `is_supported() == false`; the one difference
//! that matters here is the RSDP response, which under revision 2 is a
//! direct-map virtual address instead of a physical one (DESIGN §3).

use kernel_core::boot_info::{
    BootInfo, BootPath, CommandLine, MemoryKind, MemoryMap, MemoryRegion,
};
use kernel_core::phys::PhysRange;
use limine::BaseRevision;
use limine::memory_map::EntryType;
use limine::request::{
    ExecutableAddressRequest, ExecutableCmdlineRequest, ExecutableFileRequest, HhdmRequest,
    MemoryMapRequest, ModuleRequest, MpRequest, RequestsEndMarker, RequestsStartMarker,
    RsdpRequest, StackSizeRequest,
};

/// The revision we are written against.
const REQUESTED_REVISION: u64 = 3;

/// The revision Limine 8.x uses when it does not support ours.
const LIMINE_8_REVISION: u64 = 2;

/// The boot stack Limine gives us; later we run on per-thread kernel stacks.
const BOOT_STACK_SIZE: u64 = 64 * 1024;

#[used]
#[unsafe(link_section = ".requests_start_marker")]
static REQUESTS_START: RequestsStartMarker = RequestsStartMarker::new();

#[used]
#[unsafe(link_section = ".requests")]
static BASE_REVISION: BaseRevision = BaseRevision::with_revision(REQUESTED_REVISION);

#[used]
#[unsafe(link_section = ".requests")]
static HHDM: HhdmRequest = HhdmRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static MEMORY_MAP: MemoryMapRequest = MemoryMapRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static MODULES: ModuleRequest = ModuleRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static RSDP: RsdpRequest = RsdpRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static EXECUTABLE_ADDRESS: ExecutableAddressRequest = ExecutableAddressRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static EXECUTABLE_CMDLINE: ExecutableCmdlineRequest = ExecutableCmdlineRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static EXECUTABLE_FILE: ExecutableFileRequest = ExecutableFileRequest::new();

#[used]
#[unsafe(link_section = ".requests")]
static STACK_SIZE: StackSizeRequest = StackSizeRequest::new().with_size(BOOT_STACK_SIZE);

/// Asks Limine to start the application processors and park each until
/// its `goto_address` is written (`smp.rs` does that once the kernel is ready).
#[used]
#[unsafe(link_section = ".requests")]
static MP: MpRequest = MpRequest::new();

/// The processors Limine started and parked, and the boot CPU's APIC ID;
/// `None` on the PVH path or when Limine did not answer.
pub fn parked_processors() -> Option<(&'static [&'static limine::mp::Cpu], u32)> {
    MP.get_response()
        .map(|response| (response.cpus(), response.bsp_lapic_id()))
}

#[used]
#[unsafe(link_section = ".requests_end_marker")]
static REQUESTS_END: RequestsEndMarker = RequestsEndMarker::new();

fn memory_kind(entry_type: EntryType) -> MemoryKind {
    match entry_type {
        EntryType::USABLE => MemoryKind::Usable,
        EntryType::ACPI_RECLAIMABLE => MemoryKind::AcpiReclaimable,
        EntryType::ACPI_NVS => MemoryKind::AcpiNvs,
        EntryType::BAD_MEMORY => MemoryKind::BadMemory,
        EntryType::BOOTLOADER_RECLAIMABLE => MemoryKind::BootloaderReclaimable,
        EntryType::EXECUTABLE_AND_MODULES => MemoryKind::KernelAndModules,
        EntryType::FRAMEBUFFER => MemoryKind::Framebuffer,
        _ => MemoryKind::Reserved,
    }
}

/// The ELF entry point when Limine boots us (64-bit, Limine's page tables,
/// Limine's stack, interrupts off).
#[unsafe(no_mangle)]
extern "C" fn limine_entry() -> ! {
    crate::console::init();
    // Limine 8.x answers only the executable-file request, whose file carries
    // the command line; newer versions also answer the command-line request.
    let command_line = match (
        EXECUTABLE_CMDLINE.get_response(),
        EXECUTABLE_FILE.get_response(),
    ) {
        (Some(r), _) => CommandLine::new(r.cmdline().to_bytes()),
        (None, Some(r)) => CommandLine::new(r.file().string().to_bytes()),
        (None, None) => CommandLine::default(),
    };
    crate::arch::x86_64::cpu::configure_stop(&command_line);
    // Newer Limine reports the revision it used; older ones (8.x) only clear
    // the requested revision when they support it and otherwise boot us as
    // their newest, revision 2.
    let base_revision = match BASE_REVISION.loaded_revision() {
        Some(revision) => revision,
        None if BASE_REVISION.is_supported() => REQUESTED_REVISION,
        None => LIMINE_8_REVISION,
    };
    let Some(hhdm) = HHDM.get_response() else {
        crate::arch::x86_64::cpu::fatal(format_args!("Limine gave no HHDM response"));
    };
    let direct_map_offset = hhdm.offset();

    let mut memory_map = MemoryMap::new();
    if let Some(response) = MEMORY_MAP.get_response() {
        for entry in response.entries() {
            memory_map.push(MemoryRegion {
                range: PhysRange::from_start_len(entry.base, entry.length),
                kind: memory_kind(entry.entry_type),
            });
        }
    }

    // Module addresses are direct-map pointers.
    let boot_archive = MODULES
        .get_response()
        .and_then(|r| r.modules().first())
        .map(|file| {
            PhysRange::from_start_len(
                (file.addr() as u64).wrapping_sub(direct_map_offset),
                file.size(),
            )
        });

    let rsdp = RSDP
        .get_response()
        .map(|r| r.address() as u64)
        .map(|address| {
            // Under base revision < 3 the RSDP response is a direct-map address.
            if address >= direct_map_offset {
                address - direct_map_offset
            } else {
                address
            }
        });

    let (virtual_start, virtual_end) = super::kernel_virtual_range();
    let kernel_image = match EXECUTABLE_ADDRESS.get_response() {
        Some(r) => PhysRange::from_start_len(
            r.physical_base() + (virtual_start - r.virtual_base()),
            virtual_end - virtual_start,
        ),
        None => crate::arch::x86_64::cpu::fatal(format_args!(
            "Limine gave no executable address response"
        )),
    };

    let info = BootInfo {
        path: BootPath::Limine {
            base_revision,
            requested_revision_supported: BASE_REVISION.is_supported(),
        },
        memory_map,
        direct_map_offset,
        kernel_image,
        boot_archive,
        rsdp,
        command_line,
    };
    crate::boot::kernel_main(&info)
}
