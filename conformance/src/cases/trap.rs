//! MSG-TRAP: the trap itself (ABI.md §1): the reserved upper halves of the
//! 32-bit fields on entry, the registers and flags a trap preserves, each
//! thread's own x87/SSE state, and that `syscall` is the only way in (§9 D12).

use alloc::format;
use alloc::sync::Arc;

use abi::KernelFunction;
use spin::Mutex;

use abi::Error;
use abi::function::{RECEIVE, REPLY, REPLY_RECEIVE};
use userlib::kernel::DoorKind;

use super::kit::{self, MAX, USER_CALL, error, finished, queued, receive};
use crate::case::Case;
use crate::expect::{Expect, sizes};
use crate::peer::fault;
use userlib::probe as arch;
use userlib::raw::Buffer;

const HIGH: u64 = 1 << 32;

/// More of a case's rule: a SEND with these registers (no data, a buffer
/// of its total) must be RESERVED_BITS.
fn also_reserved(
    context: &mut crate::context::Context,
    what: &str,
    arg0: u64,
    arg1: u64,
    arg3: u64,
) -> Result<(), crate::context::Failed> {
    let registers = kit::send_raw(arg0, arg1, arg3, &[])?;
    context.check_registers(what, &registers, &error(Error::ReservedBits));
    Ok(())
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-TRAP-001",
        rule: "-1 is 0x00000000FFFFFFFF: a sign-extended -1 in arg0 is RESERVED_BITS, not INVALID_FUNCTION",
        section: "1",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let registers = kit::send_raw(u64::MAX, 0, 0, &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-002",
        rule: "SEND: a set bit in arg0's upper half is RESERVED_BITS (bit 32 with a user number; bit 63 with a kernel number, COUNTERS)",
        section: "1",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let counters = abi::KernelFunction::Counters.function().bits() | 1 << 63;
            also_reserved(
                context,
                "COUNTERS with bit 63 of arg0",
                counters,
                0,
                sizes(64, 0, 0),
            )?;
            let client = context.dead_door(DoorKind::User)?;
            let registers = kit::send_raw(
                USER_CALL.bits() | HIGH,
                u64::from(client.0),
                sizes(16, 0, 0),
                &[],
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-003",
        rule: "SEND: arg1's upper half is reserved (descriptors are 32 bits): a set bit there (63, and 32) is RESERVED_BITS",
        section: "1.4",
        decisions: &["D4"],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            also_reserved(
                context,
                "SEND with bit 32 of arg1",
                USER_CALL.bits(),
                u64::from(client.0) | HIGH,
                sizes(16, 0, 0),
            )?;
            let registers = kit::send_raw(
                USER_CALL.bits(),
                u64::from(client.0) | 1 << 63,
                sizes(16, 0, 0),
                &[],
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-004",
        rule: "SEND: bit 32 of arg3 (the reserved half of the sizes) is RESERVED_BITS, to a door and to a kernel function (COUNTERS); so is bit 40",
        section: "1.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let counters = abi::KernelFunction::Counters.function().bits();
            also_reserved(
                context,
                "COUNTERS with bit 32 of arg3",
                counters,
                0,
                sizes(64, 0, 0) | HIGH,
            )?;
            let client = context.dead_door(DoorKind::User)?;
            also_reserved(
                context,
                "SEND with bit 40 of arg3",
                USER_CALL.bits(),
                u64::from(client.0),
                sizes(16, 0, 0) | 1 << 40,
            )?;
            let registers = kit::send_raw(
                USER_CALL.bits(),
                u64::from(client.0),
                sizes(16, 0, 0) | HIGH,
                &[],
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-005",
        rule: "SEND: bit 63 of arg3 is RESERVED_BITS",
        section: "1.1",
        decisions: &[],
        expect: Expect::error("SEND", Error::ReservedBits),
        run: |context| {
            let client = context.dead_door(DoorKind::User)?;
            let registers = kit::send_raw(
                USER_CALL.bits(),
                u64::from(client.0),
                sizes(16, 0, 0) | 1 << 63,
                &[],
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-006",
        rule: "RECEIVE: a set bit in arg0's upper half is RESERVED_BITS (not BAD_DESCRIPTOR for the NULL descriptor)",
        section: "1",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::ReservedBits),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.trap(0, RECEIVE.bits() | HIGH, 0, sizes(64, 0, 0))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-007",
        rule: "RECEIVE: arg1's upper half is reserved: the owner reference with bit 32 (or 63) set is RESERVED_BITS",
        section: "1.4",
        decisions: &["D4"],
        expect: Expect::error("RECEIVE", Error::ReservedBits),
        run: |context| {
            let door = context.user_door()?;
            // A kernel that ignored the bit would deliver this instead of waiting.
            let _pending = queued(context, door.client, b"x", 16)?;
            let mut buffer = Buffer::filled(0);
            let top = buffer.trap(
                0,
                RECEIVE.bits(),
                u64::from(door.owner.0) | 1 << 63,
                sizes(64, 0, 0),
            )?;
            context.check_registers(
                "RECEIVE with bit 63 of arg1",
                &top,
                &error(Error::ReservedBits),
            );
            let registers = buffer.trap(
                0,
                RECEIVE.bits(),
                u64::from(door.owner.0) | HIGH,
                sizes(64, 0, 0),
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-008",
        rule: "RECEIVE: a set bit in arg3's upper half is RESERVED_BITS",
        section: "1.1",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::ReservedBits),
        run: |context| {
            let door = context.user_door()?;
            let _pending = queued(context, door.client, b"x", 16)?;
            let mut buffer = Buffer::filled(0);
            let registers = buffer.trap(
                0,
                RECEIVE.bits(),
                u64::from(door.owner.0),
                sizes(64, 0, 0) | HIGH,
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-009",
        rule: "REPLY: a set bit in arg0's upper half is RESERVED_BITS (checked before NOTHING_TO_REPLY)",
        section: "1",
        decisions: &[],
        expect: Expect::error("REPLY", Error::ReservedBits),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.trap(0, REPLY.bits() | HIGH, 0, 0)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-010",
        rule: "REPLY: a set bit in arg3's upper half is RESERVED_BITS (checked before NOTHING_TO_REPLY)",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::ReservedBits),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.trap(0, REPLY.bits(), 0, HIGH)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-011",
        rule: "REPLY_RECEIVE: a set bit in arg3's upper half (40, and 63) is RESERVED_BITS (checked before NOTHING_TO_REPLY)",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::ReservedBits),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let top = buffer.trap(0, REPLY_RECEIVE.bits(), 0, sizes(64, 0, 0) | 1 << 63)?;
            context.check_registers(
                "REPLY_RECEIVE with bit 63 of arg3",
                &top,
                &error(Error::ReservedBits),
            );
            let registers = buffer.trap(0, REPLY_RECEIVE.bits(), 0, sizes(64, 0, 0) | 1 << 40)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-012",
        rule: "REPLY_RECEIVE: a set bit in arg0's upper half is RESERVED_BITS",
        section: "1",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::ReservedBits),
        run: |context| {
            let mut buffer = Buffer::filled(0);
            let registers = buffer.trap(0, REPLY_RECEIVE.bits() | 1 << 48, 0, sizes(64, 0, 0))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-013",
        rule: "REPLY: arg1 is the whole 64-bit cookie, not a 32-bit field: 0xFFFFFFFFFFFFFFFF is accepted and REPLY returns zeros",
        section: "4.3",
        decisions: &["D8"],
        expect: Expect::reply_done("REPLY"),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, b"", 0)?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            context.check_registers(
                "RECEIVE",
                &served.received,
                &abi::TrapArgs::received(USER_CALL, 0, served.msg_ptr, abi::MessageSizes::new()),
            );
            let registers = buffer.reply(u64::MAX, 0);
            let call = finished(context, &call, "the caller")?;
            context.check_registers(
                "the caller's SEND",
                &call.registers,
                &kit::replied(0, 0, 0, 0),
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-TRAP-014",
        rule: "a trap preserves every register but rcx and r11 (rbx, rbp, r8-r10, r12-r15) and the stack pointer",
        section: "1",
        decisions: &[],
        expect: Expect::error("SEND of function -1", Error::InvalidFunction),
        run: |context| {
            let probe = arch::register_probe(true);
            for ((name, pattern), after) in
                arch::PRESERVED.iter().zip(arch::PATTERNS).zip(probe.after)
            {
                if after != pattern {
                    context.fail(format!(
                        "{name} expected {pattern:#x} after the trap, got {after:#x}"
                    ));
                }
            }
            context.check(
                probe.stack[0] == probe.stack[1] && probe.stack[0] != 0,
                &format!(
                    "rsp changed across the trap: {:#x} -> {:#x}",
                    probe.stack[0], probe.stack[1]
                ),
            );
            Ok(context.observe(probe.result))
        },
    },
    Case {
        id: "MSG-TRAP-015",
        rule: "a trap preserves the flags a user may set (CF PF AF ZF SF DF OF), both set and clear",
        section: "1",
        decisions: &[],
        expect: Expect::error("SEND of function -1", Error::InvalidFunction),
        run: |context| {
            let set = arch::register_probe(true);
            let clear = arch::register_probe(false);
            let (want_set, want_clear) = (arch::USER_FLAGS, 0);
            context.check(
                set.flags & arch::USER_FLAGS == want_set,
                &format!(
                    "with CF PF AF ZF SF DF OF set before the trap, RFLAGS after is {:#x}",
                    set.flags
                ),
            );
            context.check(
                clear.flags & arch::USER_FLAGS == want_clear,
                &format!(
                    "with them clear before the trap, RFLAGS after is {:#x}",
                    clear.flags
                ),
            );
            context.check_registers(
                "the second probe's SEND",
                &clear.result,
                &error(Error::InvalidFunction),
            );
            Ok(context.observe(set.result))
        },
    },
    Case {
        id: "MSG-TRAP-016",
        rule: "syscall is the only way in: a process executing int 0x80 takes a CPU exception and ends (its held call fails with PEER_DIED)",
        section: "9",
        decisions: &["D12"],
        expect: Expect::error("the control call held by the peer", Error::PeerDied),
        run: |context| kit::peer_faults(context, fault::INT_80),
    },
    Case {
        id: "MSG-TRAP-017",
        rule: "the x87/SSE state is the thread's own: a new thread starts with FNINIT's control word, MXCSR 0x1F80 and XMM0 zero whatever another thread left there, and a thread's own values survive the other thread running",
        section: "1",
        decisions: &[],
        expect: Expect::replied("the EVENT_WAIT that let the other thread run", 0, 0, 8, 0),
        run: |context| {
            let event = context.adopt(userlib::kernel::event_create()?.into_raw());
            let seen = Arc::new(Mutex::new(None));
            let theirs = Arc::clone(&seen);
            let mine = arch::FpuProbe::marked(0x5ca1_ab1e_f00d_cafe);
            arch::set_fpu(mine);
            let thread = userlib::spawn_thread(
                move || {
                    let before = arch::fpu();
                    arch::set_fpu(arch::FpuProbe::marked(0x0bad_cafe_dead_beef));
                    *theirs.lock() = Some(before);
                    let _ = userlib::kernel::event_signal(event);
                },
                16 * 1024,
            )?;
            context.adopt(thread.into_raw());
            let waited = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            let after = arch::fpu();
            arch::set_fpu(arch::FpuProbe::INITIAL);
            let before = *seen.lock();
            context.check(
                before == Some(arch::FpuProbe::INITIAL),
                &format!("the new thread started with {before:?}, not the initial state"),
            );
            context.check(
                after == mine,
                &format!("this thread's state came back as {after:?}, not {mine:?}"),
            );
            Ok(context.observe(waited.registers))
        },
    },
];
