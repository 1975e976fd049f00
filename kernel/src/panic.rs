//! The panic handler: a kernel bug, never a user-space action, ends here.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(location) => crate::console::write_fmt_panicking(format_args!(
            "hinge: PANIC at {}:{}: {}\n",
            location.file(),
            location.line(),
            info.message()
        )),
        None => {
            crate::console::write_fmt_panicking(format_args!("hinge: PANIC: {}\n", info.message()))
        }
    }
    crate::arch::x86_64::cpu::stop(false)
}
