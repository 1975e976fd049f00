//! Process-manager support: MANAGER_REGISTER, routing, cookies, exit
//! notices, ARCHIVE_READ.

use abi::function::Function;
use abi::kcall::DescriptorRequest;
use abi::{Descriptor, Error, KernelFunction, MessageSizes, Rights, TrapArgs};
use zerocopy::IntoBytes;

use super::fake_machine::*;
use super::harness::*;

// process-manager support: MANAGER_REGISTER, routing, cookies, exit notices, ARCHIVE_READ

/// init registers a door of its own as the process manager's.
fn register_manager(w: &mut World) -> Descriptor {
    let (owner, _client) = w.door_create(w.init_thread, true);
    let request = DescriptorRequest::new(owner, Rights::NONE);
    w.kcall_ok(
        w.init_thread,
        KernelFunction::ManagerRegister,
        CAP_PROCESS,
        request.as_bytes(),
    );
    owner
}

#[test]
fn process_manager_calls_carry_the_cookie_procman_set_and_its_reply_updates_it() {
    let mut w = World::new();
    let owner = register_manager(&mut w);
    let child = w.spawn_ok(b"client", &[]);
    let cookie = abi::kcall::CookieRequest::new(0x1234);
    w.kcall_ok(
        w.init_thread,
        KernelFunction::ProcessSetCookie,
        child.handle,
        cookie.as_bytes(),
    );
    // The NULL target with a process-manager number reaches procman's door.
    assert_eq!(w.receive(w.init_thread, owner, RBUF, 256), None);
    assert_eq!(
        w.send(
            child.thread,
            0x400,
            Descriptor::NULL,
            msg(SBUF, b"hello", 64)
        ),
        None
    );
    let received = w.resume(w.init_thread);
    let sizes = MessageSizes::from_fields(64, 5, 0).unwrap_or_default();
    assert_eq!(
        received,
        Some(TrapArgs::received(Function(0x400), 0x1234, RBUF, sizes))
    );
    assert_eq!(w.peek(w.init, RBUF, 5), b"hello".to_vec());
    // The reply's cookie becomes the process's cookie.
    assert_eq!(
        w.reply(w.init_thread, 0x5678, msg(RBUF, &[], 0)),
        Some(TrapArgs::default())
    );
    assert!(w.resume(child.thread).is_some());
    assert_eq!(w.receive(w.init_thread, owner, RBUF, 256), None);
    assert_eq!(
        w.send(child.thread, 0x401, Descriptor::NULL, msg(SBUF, &[], 64)),
        None
    );
    let again = w.resume(w.init_thread).map(|r| r.arg1);
    assert_eq!(again, Some(0x5678));
    w.assert_invariants();
}

#[test]
fn only_capability_holders_register_a_manager_or_read_the_archive() {
    let mut w = World::new();
    let owner = register_manager(&mut w);
    let child = w.spawn_ok(b"client", &[]);
    let request = DescriptorRequest::new(Descriptor(1), Rights::NONE);
    let regs = w.kcall(
        child.thread,
        KernelFunction::ManagerRegister,
        CAP_PROCESS,
        request.as_bytes(),
    );
    assert_eq!(
        regs,
        TrapArgs::error(Error::BadDescriptor),
        "the child holds no capability"
    );
    let regs = w.kcall(
        child.thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        &[0; 16],
    );
    assert_eq!(
        regs,
        TrapArgs::error(Error::BadDescriptor),
        "the child holds no capability"
    );
    // A client reference cannot become the manager's door.
    let (_, client) = w.door_create(w.init_thread, false);
    let request = DescriptorRequest::new(client, Rights::NONE);
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ManagerRegister,
        CAP_PROCESS,
        request.as_bytes(),
    );
    assert_eq!(regs, TrapArgs::error(Error::NotOwner));
    // PROCESS_SET_COOKIE wants a process handle.
    let cookie = abi::kcall::CookieRequest::new(1);
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ProcessSetCookie,
        owner,
        cookie.as_bytes(),
    );
    assert_eq!(regs, TrapArgs::error(Error::WrongObjectType));
    // The notice number is the kernel's to send, never a caller's.
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ProcessExited,
        Descriptor::NULL,
        &[],
    );
    assert_eq!(regs, TrapArgs::error(Error::InvalidFunction));
    w.assert_invariants();
}

/// Issue 15, finding 8: a copy of a process handle without SEND cannot
/// rewrite that process's identity as procman sees it.
#[test]
fn process_set_cookie_needs_send_on_the_handle() {
    let mut w = World::new();
    let child = w.spawn_ok(b"client", &[]);
    let without_send = Rights(Rights::HANDLE.0 & !Rights::SEND.0);
    let copy = w
        .duplicate(w.init_thread, child.handle, without_send)
        .unwrap_or_default();
    let cookie = abi::kcall::CookieRequest::new(0x99);
    let before = w.k.processes.get(child.process).map(|p| p.manager_cookie);
    let regs = w.kcall(
        w.init_thread,
        KernelFunction::ProcessSetCookie,
        copy,
        cookie.as_bytes(),
    );
    assert_eq!(regs, TrapArgs::error(Error::MissingRight));
    let after = w.k.processes.get(child.process).map(|p| p.manager_cookie);
    assert_eq!(before, after, "a refused request changes nothing");
    // The handle SPAWN returned carries SEND.
    w.kcall_ok(
        w.init_thread,
        KernelFunction::ProcessSetCookie,
        child.handle,
        cookie.as_bytes(),
    );
    let set = w.k.processes.get(child.process).map(|p| p.manager_cookie);
    assert_eq!(set, Some(0x99));
    w.assert_invariants();
}

#[test]
fn every_process_exit_reaches_the_manager_as_a_notice() {
    let mut w = World::new();
    let owner = register_manager(&mut w);
    let early = w.spawn_ok(b"client", &[]);
    let late = w.spawn_ok(b"worker", &[]);
    for (child, cookie) in [(early, 11u64), (late, 22)] {
        let request = abi::kcall::CookieRequest::new(cookie);
        w.kcall_ok(
            w.init_thread,
            KernelFunction::ProcessSetCookie,
            child.handle,
            request.as_bytes(),
        );
    }
    // An exit while nobody receives is queued...
    w.exit_process(early.thread, 7);
    let size = size_of::<abi::kcall::ProcessExitNotice>() as u16;
    let sizes = MessageSizes::from_fields(size, size, 0).unwrap_or_default();
    let function = KernelFunction::ProcessExited.function();
    // ...a too-small buffer learns the size and the notice stays...
    assert_eq!(
        w.receive(w.init_thread, owner, RBUF, 8),
        Some(TrapArgs::receive_too_small(sizes))
    );
    assert_eq!(
        w.receive(w.init_thread, owner, RBUF, 64),
        Some(TrapArgs::received(function, 0, RBUF, sizes))
    );
    let notice = abi::kcall::ProcessExitNotice {
        cookie: 11,
        status: 7,
        reserved: 0,
    };
    assert_eq!(
        w.peek(w.init, RBUF, usize::from(size)),
        notice.as_bytes().to_vec()
    );
    // ...any reply to a notice is accepted and discarded.
    assert_eq!(
        w.reply(w.init_thread, 99, msg(RBUF, &[1, 2, 3], 16)),
        Some(TrapArgs::default())
    );
    // An exit while procman waits is delivered at once (REPLY_RECEIVE keeps going).
    assert_eq!(w.receive(w.init_thread, owner, RBUF, 64), None);
    w.exit_process(late.thread, 0);
    assert_eq!(
        w.resume(w.init_thread),
        Some(TrapArgs::received(function, 0, RBUF, sizes))
    );
    let notice = abi::kcall::ProcessExitNotice {
        cookie: 22,
        status: 0,
        reserved: 0,
    };
    assert_eq!(
        w.peek(w.init, RBUF, usize::from(size)),
        notice.as_bytes().to_vec()
    );
    assert_eq!(w.reply_receive(w.init_thread, 0, msg(RBUF, &[], 64)), None);
    w.assert_invariants();
}

#[test]
fn archive_read_returns_the_size_and_what_fits_from_the_offset() {
    let mut w = World::new();
    let name = b"system.toml";
    let request = encoded(|out| abi::kcall::ArchiveReadRequest::encode(name, 5, out));
    // A 40-byte buffer (the 27-byte request fits): 8 header + 8 size + 24 bytes of the file.
    let regs = w.kcall_msg(
        w.init_thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        msg(KBUF, &request, 40),
    );
    let sizes = MessageSizes::new().with_data_size(40);
    assert_eq!(regs, TrapArgs::replied(0, 0, sizes));
    let reply = w.peek(w.init, KBUF, 40);
    assert_eq!(
        reply[8..16].to_vec(),
        (ARCHIVE_MANIFEST.len() as u64).to_le_bytes().to_vec()
    );
    assert_eq!(reply[16..40].to_vec(), ARCHIVE_MANIFEST[5..29].to_vec());
    // Past the end: the size and no bytes.
    let past = encoded(|out| abi::kcall::ArchiveReadRequest::encode(name, 1 << 40, out));
    let regs = w.kcall_msg(
        w.init_thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        msg(KBUF, &past, 64),
    );
    assert_eq!(
        regs,
        TrapArgs::replied(0, 0, MessageSizes::new().with_data_size(16))
    );
    // No such file.
    let missing = encoded(|out| abi::kcall::ArchiveReadRequest::encode(b"nope", 0, out));
    let regs = w.kcall_msg(
        w.init_thread,
        KernelFunction::ArchiveRead,
        CAP_ARCHIVE,
        msg(KBUF, &missing, 64),
    );
    assert_eq!(regs, TrapArgs::error(Error::InvalidArgument));
    w.assert_invariants();
}
