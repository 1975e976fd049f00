//! Boot self-tests that must end in a fault: each does on purpose what the
//! kernel must never do, and the boot test checks that the CPU stopped it
//! (a reported kernel-mode exception) rather than let it through.

use x86_64::structures::paging::PageTableFlags;

use super::address_space::AddressSpace;
use super::{cpu, memory};

/// Where the self-tests map their user page.
const USER_PAGE: u64 = abi::process::USER_MAP_BASE;

/// A user page (readable, writable, executable) holding `ret`, mapped in a
/// fresh address space that is made current (and stays so: the test never
/// returns, so the space is never destroyed).
fn user_page_with_ret() -> u64 {
    let Some(pml4) = memory::kernel_pml4() else {
        cpu::fatal(format_args!("self-test: no kernel page tables"));
    };
    let Ok(mut space) = AddressSpace::new(pml4) else {
        cpu::fatal(format_args!("self-test: no memory for an address space"));
    };
    let Ok(frame) = space.map_zeroed(USER_PAGE, PageTableFlags::WRITABLE) else {
        cpu::fatal(format_args!("self-test: no memory for a user page"));
    };
    let ret = memory::direct_map(frame.start_address().as_u64()) as *mut u8;
    // SAFETY: the frame was just mapped for this test alone and is reached
    // through the direct map.
    unsafe { ret.write(0xc3) };
    space.activate();
    USER_PAGE
}

/// Reads a user page by its user address from ring 0: SMAP must fault it
/// (#PF, error code 1: present, read, supervisor).
pub fn kernel_reads_user_memory() -> ! {
    let address = user_page_with_ret();
    kprintln!("self-test: the kernel reads user memory at {address:#x}");
    // SAFETY: the page is mapped and readable; only SMAP stands in the way,
    // which is what this tests.
    let byte = unsafe { core::ptr::read_volatile(address as *const u8) };
    cpu::fatal(format_args!(
        "self-test: the kernel read user memory ({byte:#x}): SMAP is off"
    ))
}

/// Calls into a user page from ring 0: SMEP must fault it (#PF, error code
/// 0x11: present, instruction fetch, supervisor).
pub fn kernel_executes_user_memory() -> ! {
    let address = user_page_with_ret();
    kprintln!("self-test: the kernel executes user memory at {address:#x}");
    // SAFETY: the page holds `ret` and is mapped executable; only SMEP
    // stands in the way, which is what this tests.
    let function: extern "C" fn() = unsafe { core::mem::transmute(address as *const ()) };
    function();
    cpu::fatal(format_args!(
        "self-test: the kernel executed user memory: SMEP is off"
    ))
}
