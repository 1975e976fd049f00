//! Buffers, sizes and reserved bits of the trap registers.

use abi::function::Function;
use abi::process::USER_END;
use abi::{Descriptor, Error, KernelFunction, TrapArgs};

use crate::thread::ThreadState;

use super::fake_machine::*;
use super::harness::*;

// 12. buffers

#[test]
fn inaccessible_buffers_are_bad_buffer() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let bad = [
        (UNMAPPED, 64),
        (0, 64),
        (8, 16),
        (KERNEL_HALF, 64),
        (USER_END - 16, 64),
        (u64::MAX - 8, 64),
        (IMAGE, 64),            // read-only: the reply must land there
        (DATA_END - 16, 64),    // crosses into an unmapped page
        (STACK_BOTTOM - 8, 16), // just below the stack
    ];
    for (buf, total) in bad {
        let send = TrapArgs::send(Function(USER_FN), REF, buf, sizes(total, 0, 0));
        assert_eq!(f.w.trap(c, send), err(Error::BadBuffer), "SEND {buf:#x}");
        let kernel = TrapArgs::send(
            KernelFunction::Counters.function(),
            Descriptor::NULL,
            buf,
            sizes(total, 0, 0),
        );
        assert_eq!(
            f.w.trap(c, kernel),
            err(Error::BadBuffer),
            "COUNTERS {buf:#x}"
        );
        assert_eq!(
            f.w.receive(s, OWNER, buf, total),
            err(Error::BadBuffer),
            "RECEIVE {buf:#x}"
        );
    }
    assert!(f.w.runnable(c) && f.w.runnable(s));
    f.w.assert_invariants();
}

#[test]
fn a_reply_buffer_must_be_readable_but_may_be_read_only() {
    let mut f = fixture(false, 1);
    let (s, c, sp) = (f.s(), f.c(0), f.sp());
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    for buf in [UNMAPPED, 0, KERNEL_HALF, DATA_END - 8] {
        assert_eq!(
            f.w.reply(s, 0, msg(buf, &[], 16)),
            err(Error::BadBuffer),
            "{buf:#x}"
        );
    }
    // The image page is read-only and holds the program's name.
    assert_eq!(f.w.peek(sp, IMAGE, 6), b"server");
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, IMAGE, sizes(8, 6, 0), false)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0x7672_6573, 0, 6, 0));
    assert_eq!(f.w.peek(f.cp(0), SBUF, 6), b"server");
    f.w.assert_invariants();
}

#[test]
fn a_message_without_data_needs_no_buffer() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(f.w.receive(s, OWNER, 0, 0), None);
    let empty = TrapArgs::send(Function(USER_FN), REF, 0, sizes(0, 0, 0));
    assert_eq!(f.w.trap(c, empty), None);
    assert_eq!(
        f.w.resume(s),
        Some(TrapArgs::received(Function(USER_FN), 0, 0, sizes(0, 0, 0)))
    );
    assert_eq!(
        f.w.trap(s, TrapArgs::reply(0, 0, sizes(0, 0, 0), false)),
        Some(TrapArgs::default())
    );
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    // A null buffer cannot take a message with data.
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"abc", 8)), None);
    assert_eq!(
        f.w.receive(s, OWNER, 0, 0),
        Some(TrapArgs::receive_too_small(sizes(8, 3, 0)))
    );
    f.w.assert_invariants();
}

// 13. sizes and reserved bits

#[test]
fn sizes_that_do_not_fit_the_total_are_bad_sizes() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    // (total, data, slots): data (+ padding + slots, when there are slots) > total.
    for (total, data, count) in [
        (16, 20, 0),
        (3, 4, 0),
        (47, 13, 2),
        (16, 1, 1),
        (0, 1, 0),
        (15, 0, 1),
    ] {
        let args = TrapArgs::send(Function(USER_FN), REF, SBUF, sizes(total, data, count));
        assert_eq!(
            f.w.trap(c, args),
            err(Error::BadSizes),
            "{total}/{data}/{count}"
        );
        let kernel = TrapArgs::send(
            KernelFunction::Counters.function(),
            Descriptor::NULL,
            KBUF,
            sizes(total, data, count),
        );
        assert_eq!(
            f.w.trap(c, kernel),
            err(Error::BadSizes),
            "kernel {total}/{data}/{count}"
        );
    }
    // RECEIVE takes a total only.
    let receive = TrapArgs::receive(OWNER, RBUF, 64);
    for arg3 in [receive.arg3 | 1, receive.arg3 | 1 << 8] {
        assert_eq!(
            f.w.trap(s, TrapArgs { arg3, ..receive }),
            err(Error::BadSizes)
        );
    }
    // REPLY's sizes follow the same rule.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let reply = TrapArgs::reply(0, RBUF, sizes(8, 9, 0), false);
    assert_eq!(f.w.trap(s, reply), err(Error::BadSizes));
    let reply = TrapArgs::reply(0, RBUF, sizes(8, 9, 0), true);
    assert_eq!(f.w.trap(s, reply), err(Error::BadSizes));
    assert!(matches!(f.w.state(c), ThreadState::AwaitingReply { .. }));
    f.w.assert_invariants();
}

#[test]
fn reserved_bits_in_the_registers_are_reserved_bits() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    let send = TrapArgs::send(Function(USER_FN), REF, SBUF, sizes(64, 0, 0));
    let kernel = TrapArgs::send(
        KernelFunction::Counters.function(),
        Descriptor::NULL,
        KBUF,
        sizes(64, 0, 0),
    );
    for base in [send, kernel] {
        for bad in [
            TrapArgs {
                arg0: base.arg0 | 1 << 32,
                ..base
            },
            TrapArgs {
                arg0: u64::MAX,
                ..base
            },
            TrapArgs {
                arg1: base.arg1 | 1 << 32,
                ..base
            },
            TrapArgs {
                arg1: base.arg1 | 1 << 63,
                ..base
            },
            TrapArgs {
                arg3: base.arg3 | 1 << 32,
                ..base
            },
            TrapArgs {
                arg3: base.arg3 | 1 << 63,
                ..base
            },
        ] {
            assert_eq!(f.w.trap(c, bad), err(Error::ReservedBits), "{bad:x?}");
        }
    }
    let receive = TrapArgs::receive(OWNER, RBUF, 64);
    for bad in [
        TrapArgs {
            arg0: receive.arg0 | 1 << 40,
            ..receive
        },
        TrapArgs {
            arg1: receive.arg1 | 1 << 32,
            ..receive
        },
        TrapArgs {
            arg3: receive.arg3 | 1 << 32,
            ..receive
        },
    ] {
        assert_eq!(f.w.trap(s, bad), err(Error::ReservedBits), "{bad:x?}");
    }
    // REPLY: arg1 is a full 64-bit cookie, arg3's upper half is reserved.
    assert_eq!(f.w.receive(s, OWNER, RBUF, 512), None);
    assert_eq!(f.w.send(c, USER_FN, REF, msg(SBUF, b"q", 64)), None);
    assert_eq!(f.w.resume(s), received(USER_FN, 0, 64, 1, 0));
    let reply = TrapArgs::reply(u64::MAX, RBUF, sizes(8, 0, 0), false);
    for bad in [
        TrapArgs {
            arg3: reply.arg3 | 1 << 32,
            ..reply
        },
        TrapArgs {
            arg0: reply.arg0 | 1 << 32,
            ..reply
        },
    ] {
        assert_eq!(f.w.trap(s, bad), err(Error::ReservedBits), "{bad:x?}");
    }
    assert_eq!(f.w.trap(s, reply), Some(TrapArgs::default()));
    assert_eq!(f.w.resume(c), replied(0, 0, 0, 0));
    assert_eq!(
        f.w.reference(f.cp(0), REF).map(|r| r.cookie),
        Some(u64::MAX)
    );
    f.w.assert_invariants();
}
