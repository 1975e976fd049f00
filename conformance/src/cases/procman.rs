//! MSG-PROCMAN: process-manager numbers (0x400-0xFFF) and the process
//! manager's door (ABI.md §2, §4.1 step 4, §6.1, §9 D6).
//!
//! MSG-PROCMAN-001..004 describe a system with *no process manager
//! registered*, which is how the suite boots (`init=conformance`, procman
//! does not run): step 4 answers PEER_DIED. If the suite is ever booted
//! under procman, those four expectations change to procman's answers and
//! their IDs stay. MSG-PROCMAN-005 and later make the runner the process
//! manager for the length of one case (MANAGER_REGISTER on a door of its
//! own, which the case closes again at its end, so the routing stops) and
//! check what §6.1 promises: the caller's manager cookie in arg1, cookies
//! set by PROCESS_SET_COOKIE (which takes a process handle and needs no
//! capability, ABI.md §6) and by procman's replies, the manager sending
//! process-manager numbers to doors, and PROCESS_EXITED notices.

use abi::function::{Function, PROCESS_MANAGER_BASE, SYSTEM_BASE};
use abi::kcall::{CookieRequest, DescriptorRequest, ProcessExitNotice};
use abi::process::FIRST_PROCESS_CONTROL;
use abi::{DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use super::kit::{self, Answer, MAX, finished, receive, replied, server};
use crate::case::{Case, Outcome};
use crate::context::{Context, Door, Failed};
use crate::expect::{Expect, Field, function_bits, sizes};
use crate::peer::{Peer, Step};

/// A door the runner registers as the process manager's (MANAGER_REGISTER,
/// sent to the runner's process-control capability, ABI.md §6); closing its
/// owner reference (at the end of the case) ends the routing.
fn manager(context: &mut Context) -> Result<Door, Failed> {
    let door = context.user_door()?;
    let request = DescriptorRequest::new(door.owner, abi::Rights::NONE);
    let call = kit::send(
        KernelFunction::ManagerRegister.function(),
        FIRST_PROCESS_CONTROL,
        request.as_bytes(),
        &[],
        64,
    )?;
    if call.registers != replied(0, 0, 8, 0) {
        return Err(Failed(alloc::format!(
            "MANAGER_REGISTER failed: {}",
            crate::context::describe_registers(&call.registers)
        )));
    }
    Ok(door)
}

/// PROCESS_SET_COOKIE on the peer's process handle.
fn set_cookie(context: &mut Context, peer: &Peer, cookie: u64) -> Result<(), Failed> {
    let request = CookieRequest::new(cookie);
    let call = kit::send(
        KernelFunction::ProcessSetCookie.function(),
        peer.process,
        request.as_bytes(),
        &[],
        64,
    )?;
    context.check_registers("PROCESS_SET_COOKIE", &call.registers, &replied(0, 0, 8, 0));
    Ok(())
}

/// The peer calls 0x400 on the NULL target with "hello" (job `job`); the
/// runner receives it on the manager's door and answers with `answer`.
/// Returns what the runner's RECEIVE saw.
fn routed_call(
    context: &mut Context,
    door: &Door,
    peer: &Peer,
    job: u32,
    answer: Answer,
) -> Outcome {
    peer.start(
        job,
        &[Step::send(
            Function(PROCESS_MANAGER_BASE),
            0,
            b"hello",
            &[],
            64,
        )],
    )?;
    context.settle();
    let (served, mut buffer) = receive(door.owner, MAX)?;
    if served.received.arg0 != 0xffff_ffff {
        kit::reply(&mut buffer, &answer)?;
    }
    let results = kit::peer_results(context, peer, job)?;
    let expected = replied(0, 0, 0, 0);
    context.check(
        results.first().map(|result| result.registers) == Some(expected),
        "the peer's routed call did not complete with the (empty) reply",
    );
    Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
}

const MANAGER_COOKIE: u64 = 0xc0ff_ee00_0000_0001;

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PROCMAN-001",
        rule: "with no process manager registered, the first process-manager number (0x400) to the NULL target is PEER_DIED",
        section: "4.1",
        decisions: &["D6"],
        expect: Expect::error("SEND", Error::PeerDied),
        run: |context| {
            let registers =
                kit::send_raw(function_bits(PROCESS_MANAGER_BASE), 0, sizes(16, 0, 0), &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PROCMAN-002",
        rule: "with no process manager registered, the last process-manager number (0xFFF) to the NULL target is PEER_DIED",
        section: "4.1",
        decisions: &["D6"],
        expect: Expect::error("SEND", Error::PeerDied),
        run: |context| {
            let registers = kit::send_raw(function_bits(SYSTEM_BASE - 1), 0, sizes(16, 0, 0), &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PROCMAN-003",
        rule: "with no process manager registered, a process-manager call to the NULL target from a process that holds no capability (the peer) is PEER_DIED",
        section: "4.1",
        decisions: &["D6"],
        expect: Expect::error("the peer's SEND", Error::PeerDied),
        run: |context| {
            let peer = context.peer(&[])?;
            let step = Step::send(Function(PROCESS_MANAGER_BASE), 0, b"hi", &[], 16);
            let result = peer.trap(step)?;
            Ok(context.observe(result.registers))
        },
    },
    Case {
        id: "MSG-PROCMAN-004",
        rule: "a process-manager number to the NULL target with data past the total is BAD_SIZES (step 2 before the routing)",
        section: "4.1",
        decisions: &["D6"],
        expect: Expect::error("SEND", Error::BadSizes),
        run: |context| {
            let registers =
                kit::send_raw(function_bits(PROCESS_MANAGER_BASE), 0, sizes(8, 9, 0), &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PROCMAN-005",
        rule: "a NULL-target process-manager call is delivered to the registered manager's door: the function, the caller's manager cookie (0 at first), msgPtr, the caller's sizes",
        section: "6.1",
        decisions: &["D6"],
        expect: Expect::received(
            "the manager's RECEIVE",
            PROCESS_MANAGER_BASE,
            0,
            sizes(64, 5, 0),
        )
        .with_buffer(&[(0, Field::Bytes(b"hello"))]),
        run: |context| {
            let peer = context.peer(&[])?;
            let door = manager(context)?;
            routed_call(context, &door, &peer, 0, Answer::default())
        },
    },
    Case {
        id: "MSG-PROCMAN-006",
        rule: "PROCESS_SET_COOKIE on a process handle sets the cookie its NULL-target process-manager calls carry in arg1",
        section: "6.1",
        decisions: &["D6"],
        expect: Expect::received(
            "the manager's RECEIVE",
            PROCESS_MANAGER_BASE,
            MANAGER_COOKIE,
            sizes(64, 5, 0),
        ),
        run: |context| {
            let peer = context.peer(&[])?;
            let door = manager(context)?;
            set_cookie(context, &peer, MANAGER_COOKIE)?;
            routed_call(context, &door, &peer, 0, Answer::default())
        },
    },
    Case {
        id: "MSG-PROCMAN-007",
        rule: "the manager's REPLY to a routed call stores its arg1 as the caller's manager cookie: the next call carries it",
        section: "6.1",
        decisions: &["D6"],
        expect: Expect::received(
            "the second call's RECEIVE",
            PROCESS_MANAGER_BASE,
            MANAGER_COOKIE,
            sizes(64, 5, 0),
        ),
        run: |context| {
            let peer = context.peer(&[])?;
            let door = manager(context)?;
            let first = routed_call(context, &door, &peer, 0, Answer::cookie(MANAGER_COOKIE))?;
            context.check(
                first.registers.arg1 == 0,
                "the first routed call did not carry cookie 0",
            );
            routed_call(context, &door, &peer, 1, Answer::default())
        },
    },
    Case {
        id: "MSG-PROCMAN-008",
        rule: "the process manager may send a process-manager number to a door: it is delivered to the door's owner",
        section: "6.1",
        decisions: &["D6"],
        expect: Expect::received(
            "the door server's RECEIVE",
            PROCESS_MANAGER_BASE,
            0,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let _manager = manager(context)?;
            let door = context.user_door()?;
            let server = server(context, door.owner, MAX, Some(Answer::default()))?;
            context.settle();
            let call = kit::send(Function(PROCESS_MANAGER_BASE), door.client, &[], &[], 16)?;
            context.check_registers("the manager's SEND", &call.registers, &replied(0, 0, 0, 0));
            let served = finished(context, &server, "the server")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-PROCMAN-009",
        rule: "when a process ends, a PROCESS_EXITED notice reaches the manager's door: function 0x080, cookie 0, sizes 16/16/0, data {manager cookie, exit status, 0}",
        section: "6.1",
        decisions: &["D7"],
        expect: Expect::received(
            "the manager's RECEIVE",
            KernelFunction::ProcessExited as i32,
            0,
            sizes(16, 16, 0),
        )
        .with_buffer(&[(0, Field::Bytes(&NOTICE))]),
        run: |context| {
            let peer = context.peer(&[])?;
            let door = manager(context)?;
            set_cookie(context, &peer, MANAGER_COOKIE)?;
            peer.exit()?;
            context.settle();
            let (served, mut buffer) = receive(door.owner, MAX)?;
            let done = kit::reply(&mut buffer, &Answer::default())?;
            context.check_registers(
                "the REPLY to the notice (accepted and discarded)",
                &done,
                &TrapArgs::default(),
            );
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-PROCMAN-010",
        rule: "once the manager's door is closed, NULL-target process-manager calls are PEER_DIED again",
        section: "4.1",
        decisions: &["D6"],
        expect: Expect::error("SEND", Error::PeerDied),
        run: |context| {
            let door = manager(context)?;
            context.close(door.owner)?;
            let registers =
                kit::send_raw(function_bits(PROCESS_MANAGER_BASE), 0, sizes(16, 0, 0), &[])?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PROCMAN-011",
        rule: "PROCESS_EXITED (0x080) is never sent: sending it is INVALID_FUNCTION",
        section: "6",
        decisions: &[],
        expect: Expect::error("SEND", Error::InvalidFunction),
        run: |context| {
            let registers = kit::send_raw(
                function_bits(KernelFunction::ProcessExited as i32),
                0,
                sizes(16, 0, 0),
                &[],
            )?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-PROCMAN-012",
        rule: "PROCESS_SET_COOKIE needs no capability: a peer holding none, given a copy of another peer's process handle, sets that peer's manager cookie, which its routed calls then carry",
        section: "6.1",
        decisions: &["D6"],
        expect: Expect::received(
            "the manager's RECEIVE",
            PROCESS_MANAGER_BASE,
            MANAGER_COOKIE,
            sizes(64, 5, 0),
        ),
        run: |context| {
            let caller = context.peer(&[])?;
            // The setter: 1 its control door, 2 a copy of the caller's handle.
            let setter = context.peer(&[DescriptorSlot::copy(caller.process, Rights::HANDLE)])?;
            let door = manager(context)?;
            let request = CookieRequest::new(MANAGER_COOKIE);
            let set = setter.trap(Step::send(
                KernelFunction::ProcessSetCookie.function(),
                2,
                request.as_bytes(),
                &[],
                64,
            ))?;
            context.check_registers(
                "the setter's PROCESS_SET_COOKIE",
                &set.registers,
                &replied(0, 0, 8, 0),
            );
            routed_call(context, &door, &caller, 0, Answer::default())
        },
    },
];

/// The notice of MSG-PROCMAN-009: the cookie set, status 0 (EXIT's code), 0.
const NOTICE: [u8; 16] = {
    let notice = ProcessExitNotice {
        cookie: MANAGER_COOKIE,
        status: 0,
        reserved: 0,
    };
    let cookie = notice.cookie.to_le_bytes();
    let status = notice.status.to_le_bytes();
    [
        cookie[0], cookie[1], cookie[2], cookie[3], cookie[4], cookie[5], cookie[6], cookie[7],
        status[0], status[1], status[2], status[3], 0, 0, 0, 0,
    ]
};
