//! Function-number ranges: which numbers each kind of target accepts.

use abi::{Descriptor, Error, KernelFunction, Rights};

use super::fake_machine::*;
use super::harness::*;

// 10. function ranges

#[test]
fn a_user_door_accepts_only_user_functions() {
    let mut f = fixture(false, 1);
    for function in [0x8000, 0x8001, 0x1234_5678, i32::MAX] {
        assert!(accepted(&mut f, function), "{function:#x}");
    }
    for function in [0x1000, 0x4000, 0x7fff, 0x400, 0x800, 0xfff] {
        assert!(!accepted(&mut f, function), "{function:#x}");
    }
    for kf in [
        KernelFunction::Close,
        KernelFunction::Counters,
        KernelFunction::DoorCreate,
    ] {
        assert!(!accepted(&mut f, kf as i32), "{kf:?}");
    }
    f.w.assert_invariants();
}

#[test]
fn a_system_door_accepts_only_system_functions() {
    let mut f = fixture(true, 1);
    assert_eq!(f.function, SYSTEM_FN);
    for function in [0x1000, 0x4000, 0x7fff] {
        assert!(accepted(&mut f, function), "{function:#x}");
    }
    for function in [0x8000, 0x8001, i32::MAX, 0x400, 0xfff] {
        assert!(!accepted(&mut f, function), "{function:#x}");
    }
    for kf in [KernelFunction::Close, KernelFunction::Yield] {
        assert!(!accepted(&mut f, kf as i32), "{kf:?}");
    }
    f.w.assert_invariants();
}

#[test]
fn invalid_and_unknown_function_numbers_are_invalid_function() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for function in [-1, -2, i32::MIN] {
        assert_eq!(
            f.w.send(c, function, REF, msg(SBUF, &[], 8)),
            err(Error::InvalidFunction)
        );
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(SBUF, &[], 8)),
            err(Error::InvalidFunction)
        );
    }
    for function in [0x0, 0x4, 0x13, 0x100, 0x3ff] {
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(KBUF, &[], 64)),
            err(Error::InvalidFunction),
            "{function:#x}"
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_process_manager_function_without_a_process_manager_is_peer_died() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for function in [0x400, 0x401, 0xfff] {
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(SBUF, &[], 8)),
            err(Error::PeerDied)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn a_door_function_on_the_null_target_is_function_out_of_range() {
    let mut f = fixture(false, 1);
    let c = f.c(0);
    for function in [0x1000, 0x7fff, 0x8000, i32::MAX] {
        assert_eq!(
            f.w.send(c, function, Descriptor::NULL, msg(SBUF, &[], 8)),
            err(Error::FunctionOutOfRange)
        );
    }
    f.w.assert_invariants();
}

#[test]
fn send_needs_an_open_door_descriptor_with_the_send_right() {
    let mut f = fixture(false, 1);
    let (s, c) = (f.s(), f.c(0));
    assert_eq!(
        f.w.send(c, USER_FN, Descriptor(5), msg(SBUF, &[], 8)),
        err(Error::BadDescriptor)
    );
    let e = f.w.event_create(c);
    assert_eq!(
        f.w.send(c, USER_FN, e, msg(SBUF, &[], 8)),
        err(Error::WrongObjectType)
    );
    let Ok(mute) = f.w.duplicate(c, REF, Rights::TRANSFER) else {
        panic!("DUPLICATE failed")
    };
    assert_eq!(
        f.w.send(c, USER_FN, mute, msg(SBUF, &[], 8)),
        err(Error::MissingRight)
    );
    // The owner reference has no SEND right.
    assert_eq!(
        f.w.send(s, USER_FN, OWNER, msg(SBUF, &[], 8)),
        err(Error::MissingRight)
    );
    f.w.assert_invariants();
}
