//! The 32-bit entry point for QEMU's direct PVH boot (`-kernel kernel.elf`).
//!
//! QEMU finds `pvh_entry` through the Xen ELF note (XEN_ELFNOTE_PHYS32_ENTRY)
//! and jumps there in 32-bit protected mode with paging off, flat 4 GiB
//! segments, interrupts off and EBX holding the physical address of
//! `hvm_start_info` (Xen's PVH ABI, `xen/include/public/arch-x86/hvm/start_info.h`).
//!
//! The stub runs at its physical address (the kernel is linked at VMA
//! 0xffffffff80000000 but loaded at LMA 0x200000), so every address it uses is
//! written `symbol - VIRT_TO_PHYS`. It switches to long mode with static boot
//! page tables, all 2 MiB pages (this machine's KVM offers no 1 GiB pages):
//!
//! - physical 0-4 GiB at virtual 0 (so the stub survives enabling paging)
//!   and at the direct-map base 0xffff800000000000 (same tables, shared);
//! - physical 0x200000 and up at 0xffffffff80000000 (the kernel image).
//!
//! Then it jumps to the higher half and calls `arch::x86_64::boot::pvh::pvh_main(start_info)`.

use core::arch::global_asm;

/// Where the stub's page tables map physical address 0 in the higher half.
pub const PVH_DIRECT_MAP_OFFSET: u64 = 0xffff_8000_0000_0000;

/// The kernel image's link address minus its load address on this path.
const PVH_VIRT_TO_PHYS: u64 = 0xffff_ffff_8000_0000 - 0x20_0000;

unsafe extern "C" {
    /// The stub's PML4 (identity map of 0-4 GiB, the direct map and the
    /// kernel image); never changed after boot.
    static pvh_pml4: u8;
}

/// The physical address of the stub's page tables, which the application
/// processors' trampoline (`smp.rs`) enters long mode with: they map its
/// low page one to one and the kernel image where it is linked. Only
/// meaningful on the PVH path (the image at its load address).
pub fn boot_tables_physical() -> u64 {
    &raw const pvh_pml4 as u64 - PVH_VIRT_TO_PHYS
}

global_asm!(
    r#"
    .set VIRT_TO_PHYS, 0xffffffff80000000 - 0x200000
    .set PAGE_PRESENT_WRITABLE, 0x3
    .set PAGE_HUGE, 0x80

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                         /* name size: "Xen\0" */
    .long 8                         /* descriptor size */
    .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_entry - VIRT_TO_PHYS
    .p2align 2

    .section .text.boot, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    cld
    movl %ebx, %edi                 /* hvm_start_info, the first argument later */
    movl $(pvh_boot_stack_top - VIRT_TO_PHYS), %esp

    movl %cr4, %eax                 /* CR4.PAE (bit 5): required for long mode */
    orl $0x20, %eax
    movl %eax, %cr4

    movl $(pvh_pml4 - VIRT_TO_PHYS), %eax
    movl %eax, %cr3

    movl $0xc0000080, %ecx          /* IA32_EFER: LME (bit 8) and NXE (bit 11) */
    rdmsr
    orl $0x900, %eax
    wrmsr

    movl %cr0, %eax                 /* CR0.PG (31) + WP (16) + PE (0): long mode is active now */
    orl $0x80010001, %eax
    movl %eax, %cr0

    lgdt (pvh_gdt_pointer - VIRT_TO_PHYS)
    ljmp $0x08, $(pvh_long_mode - VIRT_TO_PHYS)

    .code64
pvh_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $pvh_higher_half, %rax
    jmpq *%rax
pvh_higher_half:
    movabsq $pvh_boot_stack_top, %rsp
    movl %edi, %edi                 /* upper halves are undefined after the mode switch */
    xorl %ebp, %ebp
    call {pvh_main}
    ud2

    .section .rodata
    .p2align 3
pvh_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit ring-0 code */
    .quad 0x00cf92000000ffff        /* 0x10: ring-0 data */
pvh_gdt_end:
    .p2align 2
pvh_gdt_pointer:
    .word pvh_gdt_end - pvh_gdt - 1
    .long pvh_gdt - VIRT_TO_PHYS

    .section .data
    .p2align 12
    .global pvh_pml4
pvh_pml4:
    .quad pvh_pdpt_low - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE
    .fill 255, 8, 0
    .quad pvh_pdpt_low - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE   /* 256: 0xffff800000000000 */
    .fill 254, 8, 0
    .quad pvh_pdpt_kernel - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE /* 511 */
pvh_pdpt_low:
    .quad pvh_pd_low - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE
    .quad pvh_pd_low + 0x1000 - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE
    .quad pvh_pd_low + 0x2000 - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE
    .quad pvh_pd_low + 0x3000 - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE
    .fill 508, 8, 0
pvh_pdpt_kernel:
    .fill 510, 8, 0
    .quad pvh_pd_kernel - VIRT_TO_PHYS + PAGE_PRESENT_WRITABLE  /* 510: 0xffffffff80000000 */
    .quad 0
pvh_pd_low:
    .set frame, 0
    .rept 2048
    .quad (frame << 21) + PAGE_HUGE + PAGE_PRESENT_WRITABLE
    .set frame, frame + 1
    .endr
pvh_pd_kernel:
    .set frame, 0
    .rept 512
    .quad 0x200000 + (frame << 21) + PAGE_HUGE + PAGE_PRESENT_WRITABLE
    .set frame, frame + 1
    .endr

    .section .bss
    .p2align 4
pvh_boot_stack:
    .skip 65536
pvh_boot_stack_top:

    .section .text
    "#,
    pvh_main = sym super::pvh::pvh_main,
    options(att_syntax)
);
