//! MSG-SIG: interrupting threads (ABI.md §6.10, §9 D63-D65, D68):
//! THREAD_INTERRUPT of a thread blocked in a queued SEND, in a SEND being
//! served, in RECEIVE, in REPLY_RECEIVE's receive half and in EVENT_WAIT;
//! the interruption a running thread keeps for its next blocking call; and
//! each refusal changing nothing.

use alloc::format;

use abi::trap::{CALL_RECEIVED, REPLY_DELIVERED};
use abi::upcall::ThreadInterruptRequest;
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use super::kit::{self, Answer, MAX, USER_CALL};
use crate::case::Case;
use crate::context::{Context, Failed};
use crate::expect::Expect;
use userlib::raw::Buffer;

/// THREAD_INTERRUPT of `target` (NULL: the caller) with `signal`; its registers.
pub fn interrupt(target: Descriptor, signal: u32, info: u64) -> Result<TrapArgs, Failed> {
    let request = ThreadInterruptRequest::new(signal, info);
    let call = kit::send(
        KernelFunction::ThreadInterrupt.function(),
        target,
        request.as_bytes(),
        &[],
        64,
    )?;
    Ok(call.registers)
}

/// THREAD_INTERRUPT that must succeed.
pub fn interrupt_ok(context: &mut Context, target: Descriptor, signal: u32) -> Result<(), Failed> {
    let registers = interrupt(target, signal, 0)?;
    context.check(
        registers == kit::replied(0, 0, 8, 0),
        &format!(
            "THREAD_INTERRUPT: {}",
            crate::context::describe_registers(&registers)
        ),
    );
    Ok(())
}

/// A caller on its own thread (with a handle on it) whose call to `door`
/// is queued (nobody receives).
fn queued_caller(
    context: &mut Context,
    client: Descriptor,
    slots: &[DescriptorSlot],
) -> Result<(crate::context::Job<Result<kit::Call, Failed>>, Descriptor), Failed> {
    let slots = slots.to_vec();
    let job =
        context.job_with_handle(move || kit::send(USER_CALL, client, b"withdrawn", &slots, 64))?;
    context.settle();
    context.check(!job.0.finished(), "the caller did not block");
    Ok(job)
}

/// A thread blocked in RECEIVE on `owner`, with a handle.
fn blocked_receiver(
    context: &mut Context,
    owner: Descriptor,
) -> Result<(crate::context::Job<TrapArgs>, Descriptor), Failed> {
    let job = context.job_with_handle(move || {
        let mut buffer = Buffer::filled(kit::UNTOUCHED);
        buffer.receive(owner, MAX)
    })?;
    context.settle();
    context.check(!job.0.finished(), "the receiver did not block");
    Ok(job)
}

/// A thread blocked in EVENT_WAIT on `event`, with a handle.
fn blocked_waiter(
    context: &mut Context,
    event: Descriptor,
) -> Result<(crate::context::Job<Result<kit::Call, Failed>>, Descriptor), Failed> {
    let job = context.job_with_handle(move || {
        kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)
    })?;
    context.settle();
    context.check(!job.0.finished(), "the waiter did not block");
    Ok(job)
}

/// A caller on a thread of its own, with a handle on that thread.
type HandledCaller = (crate::context::Job<Result<kit::Call, Failed>>, Descriptor);

/// A call to `door` being served: the runner holds it. Returns the caller
/// (with a handle) and the runner's receive buffer.
fn served_caller(
    context: &mut Context,
    door: crate::context::Door,
) -> Result<(HandledCaller, Buffer), Failed> {
    let client = door.client;
    let caller =
        context.job_with_handle(move || kit::send(USER_CALL, client, b"served", &[], 64))?;
    context.settle();
    let (served, buffer) = kit::receive(door.owner, MAX)?;
    context.check(
        served.bytes.get(..6) == Some(&b"served"[..]),
        "the runner did not receive the call",
    );
    Ok((caller, buffer))
}

/// PROCESS_SUSPEND or PROCESS_RESUME through `handle`; its registers.
pub fn control(function: KernelFunction, handle: Descriptor) -> Result<TrapArgs, Failed> {
    Ok(kit::send(function.function(), handle, &[], &[], 64)?.registers)
}

/// PROCESS_SUSPEND or PROCESS_RESUME that must answer msgRetVal `was`.
fn control_ok(
    context: &mut Context,
    function: KernelFunction,
    handle: Descriptor,
    was: u32,
) -> Result<(), Failed> {
    let registers = control(function, handle)?;
    context.check(
        registers == kit::replied(was, 0, 8, 0),
        &format!(
            "{}: {}",
            function.name(),
            crate::context::describe_registers(&registers)
        ),
    );
    Ok(())
}

const INTERRUPTED: Expect = Expect::error("the interrupted call", Error::Interrupted);

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-SIG-001",
        rule: "THREAD_INTERRUPT of a thread whose SEND is queued (not received) ends it with INTERRUPTED, arg2 0",
        section: "6.10",
        decisions: &["D63", "D64"],
        expect: INTERRUPTED,
        run: |context| {
            let door = context.user_door()?;
            let (job, handle) = queued_caller(context, door.client, &[])?;
            interrupt_ok(context, handle, 0)?;
            let call = kit::finished(context, &job, "the interrupted caller")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-002",
        rule: "a withdrawn call never reaches the server: a RECEIVE after the interruption blocks, and gets the next call",
        section: "6.10",
        decisions: &["D64"],
        expect: Expect::received(
            "the next RECEIVE",
            kit::USER_CALL.0,
            0,
            crate::expect::sizes(64, 4, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let (job, handle) = queued_caller(context, door.client, &[])?;
            interrupt_ok(context, handle, 0)?;
            let _ = kit::finished(context, &job, "the interrupted caller")?;
            let server = kit::server(context, door.owner, MAX, Some(Answer::data(b"")))?;
            context.settle();
            context.check(!server.finished(), "the server received a withdrawn call");
            let call = kit::send(USER_CALL, door.client, b"next", &[], 64)?;
            context.check(
                call.registers == kit::replied(0, 0, 0, 0),
                "the next call was not answered",
            );
            let served = kit::finished(context, &server, "the server")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-SIG-003",
        rule: "the descriptor a withdrawn call's slot would have moved stays with the sender, with its rights",
        section: "6.10",
        decisions: &["D64"],
        expect: Expect::replied("DESCRIPTOR_INFO of the event", 0, 0, 16, 0),
        run: |context| {
            let door = context.user_door()?;
            let event = context.event()?;
            let slots = [DescriptorSlot::moving(event, Rights::EVENT)];
            let (job, handle) = queued_caller(context, door.client, &slots)?;
            interrupt_ok(context, handle, 0)?;
            let call = kit::finished(context, &job, "the interrupted caller")?;
            context.check(
                call.registers.kernel_error() == Some(Error::Interrupted),
                "the call was not interrupted",
            );
            context.check(
                kit::info(event) == Ok((abi::ObjectKind::Event as u32, Rights::EVENT.0)),
                "the event did not stay with its rights",
            );
            let request = abi::kcall::DescriptorRequest::new(event, Rights::NONE);
            let info = kit::send(
                KernelFunction::DescriptorInfo.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(context.observe(info.registers))
        },
    },
    Case {
        id: "MSG-SIG-004",
        rule: "THREAD_INTERRUPT of a thread whose SEND is being served ends it with INTERRUPTED, arg2 CALL_RECEIVED (2)",
        section: "6.10",
        decisions: &["D64"],
        expect: INTERRUPTED.with_arg2(CALL_RECEIVED),
        run: |context| {
            let door = context.user_door()?;
            let ((job, handle), mut buffer) = served_caller(context, door)?;
            interrupt_ok(context, handle, 0)?;
            let call = kit::finished(context, &job, "the interrupted caller")?;
            let _ = kit::reply(&mut buffer, &Answer::data(b""))?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-005",
        rule: "the server's REPLY to a call whose caller was interrupted is CALLER_GONE",
        section: "6.10",
        decisions: &["D64"],
        expect: Expect::error("the server's REPLY", Error::CallerGone),
        run: |context| {
            let door = context.user_door()?;
            let ((job, handle), mut buffer) = served_caller(context, door)?;
            interrupt_ok(context, handle, 0)?;
            let _ = kit::finished(context, &job, "the interrupted caller")?;
            let registers = kit::reply(&mut buffer, &Answer::data(b"late"))?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-SIG-006",
        rule: "THREAD_INTERRUPT of a thread blocked in RECEIVE ends it with INTERRUPTED, arg2 0",
        section: "6.10",
        decisions: &["D63"],
        expect: INTERRUPTED,
        run: |context| {
            let door = context.user_door()?;
            let (job, handle) = blocked_receiver(context, door.owner)?;
            interrupt_ok(context, handle, 0)?;
            let registers = kit::finished_value(context, &job, "the interrupted receiver")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-SIG-007",
        rule: "after an interrupted RECEIVE the door has no receiver: a call queues, and the server's next RECEIVE takes it at once",
        section: "6.10",
        decisions: &[],
        expect: Expect::received(
            "the next RECEIVE",
            kit::USER_CALL.0,
            0,
            crate::expect::sizes(64, 5, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let (job, handle) = blocked_receiver(context, door.owner)?;
            interrupt_ok(context, handle, 0)?;
            let _ = kit::finished_value(context, &job, "the interrupted receiver")?;
            let caller = kit::queued(context, door.client, b"again", 64)?;
            context.check(!caller.finished(), "the call found a receiver");
            let (served, mut buffer) = kit::receive(door.owner, MAX)?;
            let _ = kit::reply(&mut buffer, &Answer::data(b""))?;
            let _ = kit::finished(context, &caller, "the caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-SIG-008",
        rule: "THREAD_INTERRUPT of a thread in REPLY_RECEIVE's receive half ends it with INTERRUPTED, arg2 REPLY_DELIVERED, the reply delivered",
        section: "6.10",
        decisions: &["D64"],
        expect: INTERRUPTED.with_arg2(REPLY_DELIVERED),
        run: |context| {
            let door = context.user_door()?;
            let owner = door.owner;
            let (job, handle) = context.job_with_handle(move || {
                let (_, mut buffer) = kit::receive(owner, MAX)?;
                let (bytes, arg3) = crate::peer::message(b"answer", &[], MAX);
                buffer.put(0, &bytes);
                Ok::<TrapArgs, Failed>(buffer.reply_receive(0, arg3))
            })?;
            context.settle();
            let call = kit::send(USER_CALL, door.client, b"q", &[], 64)?;
            // msgRetVal is the reply's first word (ABI.md §3): "answ".
            context.check(
                call.registers == kit::replied(u32::from_le_bytes(*b"answ"), 0, 6, 0)
                    && call.bytes.get(..6) == Some(&b"answer"[..]),
                "the reply half was not delivered",
            );
            context.settle();
            context.check(
                !job.finished(),
                "the server did not wait in the receive half",
            );
            interrupt_ok(context, handle, 0)?;
            let registers = kit::finished(context, &job, "the interrupted server")?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-SIG-009",
        rule: "THREAD_INTERRUPT of a thread blocked in EVENT_WAIT ends it with INTERRUPTED, arg2 0",
        section: "6.10",
        decisions: &[],
        expect: INTERRUPTED,
        run: |context| {
            let event = context.event()?;
            let (job, handle) = blocked_waiter(context, event)?;
            interrupt_ok(context, handle, 0)?;
            let call = kit::finished(context, &job, "the interrupted waiter")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-010",
        rule: "an interrupted waiter leaves the event: the next EVENT_SIGNAL is counted, and an EVENT_WAIT then returns at once with 0 left",
        section: "6.10",
        decisions: &[],
        expect: Expect::replied("the EVENT_WAIT after the signal", 0, 0, 8, 0),
        run: |context| {
            let event = context.event()?;
            let (job, handle) = blocked_waiter(context, event)?;
            interrupt_ok(context, handle, 0)?;
            let _ = kit::finished(context, &job, "the interrupted waiter")?;
            userlib::kernel::event_signal(event)?;
            let call = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-011",
        rule: "THREAD_INTERRUPT to the NULL target interrupts the caller: its next EVENT_WAIT on an unsignalled event returns INTERRUPTED at once",
        section: "6.10",
        decisions: &["D63", "D65"],
        expect: INTERRUPTED,
        run: |context| {
            let event = context.event()?;
            interrupt_ok(context, Descriptor::NULL, 0)?;
            let call = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-012",
        rule: "a kept interruption is taken once: after the INTERRUPTED, an EVENT_WAIT blocks until a signal",
        section: "6.10",
        decisions: &["D65"],
        expect: Expect::replied("the second EVENT_WAIT", 0, 0, 8, 0),
        run: |context| {
            let event = context.event()?;
            let (job, _) = context.job_with_handle(move || {
                let _ = interrupt(Descriptor::NULL, 0, 0);
                let first = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
                let second = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
                Ok::<_, Failed>((first.registers, second.registers))
            })?;
            context.settle();
            context.check(!job.finished(), "the second EVENT_WAIT did not block");
            userlib::kernel::event_signal(event)?;
            let (first, second) = kit::finished(context, &job, "the waiter")?;
            context.check(
                first.kernel_error() == Some(Error::Interrupted),
                "the first EVENT_WAIT was not INTERRUPTED",
            );
            Ok(context.observe(second))
        },
    },
    Case {
        id: "MSG-SIG-013",
        rule: "a call that does not block keeps the interruption: an EVENT_WAIT on a signalled event succeeds, the next one returns INTERRUPTED",
        section: "6.10",
        decisions: &["D65"],
        expect: INTERRUPTED,
        run: |context| {
            let event = context.event()?;
            userlib::kernel::event_signal(event)?;
            interrupt_ok(context, Descriptor::NULL, 0)?;
            let first = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            context.check(
                first.registers == kit::replied(0, 0, 8, 0),
                "the counted EVENT_WAIT failed",
            );
            let second = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            Ok(context.observe(second.registers))
        },
    },
    Case {
        id: "MSG-SIG-014",
        rule: "a SEND with an interruption kept returns INTERRUPTED (arg2 0) before the waiting server sees it; the next call reaches it",
        section: "6.10",
        decisions: &["D64", "D65", "D68"],
        expect: INTERRUPTED,
        run: |context| {
            let door = context.user_door()?;
            let server = kit::server(context, door.owner, MAX, Some(Answer::data(b"")))?;
            context.settle();
            interrupt_ok(context, Descriptor::NULL, 0)?;
            let call = kit::send(USER_CALL, door.client, b"no", &[], 64)?;
            context.settle();
            context.check(!server.finished(), "the server saw the interrupted call");
            let next = kit::send(USER_CALL, door.client, b"yes", &[], 64)?;
            context.check(
                next.registers == kit::replied(0, 0, 0, 0),
                "the next call was not answered",
            );
            let _ = kit::finished(context, &server, "the server")?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-015",
        rule: "a refused SEND (a dead door) leaves the interruption kept: PEER_DIED, then the next EVENT_WAIT is INTERRUPTED",
        section: "6.10",
        decisions: &["D65"],
        expect: INTERRUPTED,
        run: |context| {
            let dead = context.dead_door(userlib::kernel::DoorKind::User)?;
            let event = context.event()?;
            interrupt_ok(context, Descriptor::NULL, 0)?;
            let refused = kit::send(USER_CALL, dead, b"x", &[], 64)?;
            context.check(
                refused.registers.kernel_error() == Some(Error::PeerDied),
                "the dead door's SEND",
            );
            let call = kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)?;
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-016",
        rule: "THREAD_INTERRUPT with a reserved field set is RESERVED_BITS and changes nothing",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("THREAD_INTERRUPT", Error::ReservedBits),
        run: |context| {
            let request = ThreadInterruptRequest {
                reserved: 1,
                ..ThreadInterruptRequest::new(0, 0)
            };
            kit::refused(
                context,
                KernelFunction::ThreadInterrupt,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SIG-017",
        rule: "THREAD_INTERRUPT with signal 64 is NO_SUCH_SIGNAL and changes nothing",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("THREAD_INTERRUPT", Error::NoSuchSignal),
        run: |context| {
            let request = ThreadInterruptRequest::new(64, 0);
            kit::refused(
                context,
                KernelFunction::ThreadInterrupt,
                Descriptor::NULL,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SIG-018",
        rule: "THREAD_INTERRUPT sent to an event is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("THREAD_INTERRUPT", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            let request = ThreadInterruptRequest::new(0, 0);
            kit::refused(
                context,
                KernelFunction::ThreadInterrupt,
                event,
                request.as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SIG-019",
        rule: "THREAD_INTERRUPT through a thread handle without SEND is MISSING_RIGHT and the blocked thread stays blocked",
        section: "6.10",
        decisions: &["D63"],
        expect: Expect::error("THREAD_INTERRUPT", Error::MissingRight),
        run: |context| {
            let event = context.event()?;
            let (job, handle) = blocked_waiter(context, event)?;
            let weak = context.duplicate(handle, Rights::TRANSFER)?;
            let job = (job, ());
            let outcome = kit::refused(
                context,
                KernelFunction::ThreadInterrupt,
                weak,
                ThreadInterruptRequest::new(0, 0).as_bytes(),
            );
            context.settle();
            context.check(!job.0.finished(), "the waiter was woken");
            userlib::kernel::event_signal(event)?;
            let _ = kit::finished(context, &job.0, "the waiter")?;
            let _ = &job;
            outcome
        },
    },
    Case {
        id: "MSG-SIG-020",
        rule: "THREAD_INTERRUPT through the handle of a thread that ended is PEER_DIED",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("THREAD_INTERRUPT", Error::PeerDied),
        run: |context| {
            let (job, handle) = context.job_with_handle(|| 0u32)?;
            let _ = kit::finished_value(context, &job, "the thread")?;
            let registers = interrupt(handle, 0, 0)?;
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-SIG-021",
        rule: "THREAD_INTERRUPT of a request that is not 16 bytes is BAD_SIZES",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("THREAD_INTERRUPT", Error::BadSizes),
        run: |context| {
            kit::refused(
                context,
                KernelFunction::ThreadInterrupt,
                Descriptor::NULL,
                &[0u8; 8],
            )
        },
    },
    Case {
        id: "MSG-SIG-022",
        rule: "THREAD_INTERRUPT through the handle of a process with no thread (created, not started) is PEER_DIED and changes nothing",
        section: "6.10",
        decisions: &["D63"],
        expect: Expect::error("THREAD_INTERRUPT", Error::PeerDied),
        run: |context| {
            let process = userlib::kernel::process_create(&[])?;
            let process = context.adopt(process.into_raw());
            kit::refused(
                context,
                KernelFunction::ThreadInterrupt,
                process,
                ThreadInterruptRequest::new(0, 0).as_bytes(),
            )
        },
    },
    Case {
        id: "MSG-SIG-023",
        rule: "a reply delivered to a caller whose process is suspended arrives after PROCESS_RESUME, exactly once: its process does nothing more until then",
        section: "6.10",
        decisions: &["D69"],
        expect: Expect::replied("the suspended caller's SEND", 7, 0, 14, 0),
        run: |context| {
            let door = context.user_door()?;
            let event = context.event()?;
            let peer = context.peer(&[
                DescriptorSlot::copy(event, Rights::EVENT),
                DescriptorSlot::copy(door.client, Rights::DOOR_CLIENT),
            ])?;
            peer.start(
                0,
                &[
                    crate::peer::Step::send(USER_CALL, 3, b"call", &[], 64),
                    crate::peer::Step::send(
                        KernelFunction::EventSignal.function(),
                        2,
                        &[],
                        &[],
                        64,
                    ),
                ],
            )?;
            context.settle();
            let (served, mut buffer) = kit::receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..4) == Some(&b"call"[..]),
                "the runner did not receive the peer's call",
            );
            control_ok(context, KernelFunction::ProcessSuspend, peer.process, 0)?;
            let reply = kit::reply(&mut buffer, &Answer::data(b"\x07\0\0\0\0\0\0\0answer"))?;
            context.check(
                reply == TrapArgs::default(),
                "the REPLY to the suspended caller failed",
            );
            let waiter = context.job(move || {
                kit::send(KernelFunction::EventWait.function(), event, &[], &[], 64)
            })?;
            context.settle();
            context.check(
                !waiter.finished(),
                "the suspended process went on after its reply (it signalled the event)",
            );
            control_ok(context, KernelFunction::ProcessResume, peer.process, 1)?;
            let _ = kit::finished(context, &waiter, "the event's waiter")?;
            let results = kit::peer_results(context, &peer, 0)?;
            context.check(
                results.len() == 2,
                "the peer's job did not run both steps once",
            );
            let first = results
                .first()
                .ok_or_else(|| Failed(alloc::string::String::from("the peer ran no step")))?;
            Ok(context.observe(first.registers))
        },
    },
    Case {
        id: "MSG-SIG-024",
        rule: "PROCESS_SUSPEND of a process suspended already answers msgRetVal 1 and changes nothing (suspension is a flag, not a count)",
        section: "6.10",
        decisions: &["D69"],
        expect: Expect::replied("the second PROCESS_SUSPEND", 1, 0, 8, 0),
        run: |context| {
            let peer = context.peer(&[])?;
            control_ok(context, KernelFunction::ProcessSuspend, peer.process, 0)?;
            let m = kit::measured(KernelFunction::ProcessSuspend, peer.process, &[], 64)?;
            context.check(
                m.before == m.after,
                "the second suspend changed the counters",
            );
            // One resume undoes both: the peer answers its control door.
            control_ok(context, KernelFunction::ProcessResume, peer.process, 1)?;
            control_ok(context, KernelFunction::ProcessResume, peer.process, 0)?;
            peer.exit()?;
            Ok(context.observe(m.call.registers))
        },
    },
    Case {
        id: "MSG-SIG-025",
        rule: "PROCESS_RESUME of a process that runs answers msgRetVal 0 and changes nothing",
        section: "6.10",
        decisions: &["D69"],
        expect: Expect::replied("PROCESS_RESUME", 0, 0, 8, 0),
        run: |context| {
            let peer = context.peer(&[])?;
            let m = kit::measured(KernelFunction::ProcessResume, peer.process, &[], 64)?;
            context.check(m.before == m.after, "the resume changed the counters");
            peer.exit()?;
            Ok(context.observe(m.call.registers))
        },
    },
    Case {
        id: "MSG-SIG-026",
        rule: "a call to a suspended server is received but not answered until PROCESS_RESUME; then it is answered once",
        section: "6.10",
        decisions: &["D69"],
        expect: Expect::replied("the call to the suspended server", 0, 0, 0, 0),
        run: |context| {
            let peer_door = kit::peer_door(context)?;
            kit::peer_serves(&peer_door, 64)?;
            context.settle();
            let peer = peer_door.peer;
            control_ok(context, KernelFunction::ProcessSuspend, peer.process, 0)?;
            let client = peer_door.client;
            let caller = context.job(move || kit::send(USER_CALL, client, b"work", &[], 64))?;
            context.settle();
            context.check(!caller.finished(), "a suspended server answered");
            control_ok(context, KernelFunction::ProcessResume, peer.process, 1)?;
            let call = kit::finished(context, &caller, "the caller")?;
            let results = kit::peer_results(context, &peer, 0)?;
            context.check(
                results.len() == 2,
                "the server did not receive and reply once",
            );
            Ok(context.observe(call.registers))
        },
    },
    Case {
        id: "MSG-SIG-027",
        rule: "PROCESS_SUSPEND sent to an event is WRONG_OBJECT_TYPE and changes nothing",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("PROCESS_SUSPEND", Error::WrongObjectType),
        run: |context| {
            let event = context.event()?;
            kit::refused(context, KernelFunction::ProcessSuspend, event, &[])
        },
    },
    Case {
        id: "MSG-SIG-028",
        rule: "PROCESS_SUSPEND through a process handle without SEND is MISSING_RIGHT and the process goes on",
        section: "6.10",
        decisions: &["D69"],
        expect: Expect::error("PROCESS_SUSPEND", Error::MissingRight),
        run: |context| {
            let peer = context.peer(&[])?;
            let weak = context.duplicate(peer.process, Rights::TRANSFER)?;
            let outcome = kit::refused(context, KernelFunction::ProcessSuspend, weak, &[]);
            // It still answers its control door.
            peer.exit()?;
            outcome
        },
    },
    Case {
        id: "MSG-SIG-029",
        rule: "PROCESS_RESUME through the handle of a process that ended is PEER_DIED",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("PROCESS_RESUME", Error::PeerDied),
        run: |context| {
            let peer = context.peer(&[])?;
            peer.exit()?;
            context.settle();
            kit::refused(context, KernelFunction::ProcessResume, peer.process, &[])
        },
    },
    Case {
        id: "MSG-SIG-030",
        rule: "PROCESS_SUSPEND with request bytes is BAD_SIZES and changes nothing",
        section: "6.10",
        decisions: &[],
        expect: Expect::error("PROCESS_SUSPEND", Error::BadSizes),
        run: |context| {
            let peer = context.peer(&[])?;
            let outcome = kit::refused(
                context,
                KernelFunction::ProcessSuspend,
                peer.process,
                &[0u8; 8],
            );
            peer.exit()?;
            outcome
        },
    },
    Case {
        id: "MSG-SIG-031",
        rule: "PROCESS_KILL ends a suspended process: its handle then answers PEER_DIED",
        section: "6.10",
        decisions: &["D69"],
        expect: Expect::error("PROCESS_SUSPEND after the kill", Error::PeerDied),
        run: |context| {
            let peer = context.peer(&[])?;
            control_ok(context, KernelFunction::ProcessSuspend, peer.process, 0)?;
            let kill = abi::kcall::ExitRequest::new(5);
            let call = kit::send(
                KernelFunction::ProcessKill.function(),
                peer.process,
                kill.as_bytes(),
                &[],
                64,
            )?;
            context.check(
                call.registers == kit::replied(0, 0, 8, 0),
                "PROCESS_KILL failed",
            );
            context.settle();
            Ok(context.observe(control(KernelFunction::ProcessSuspend, peer.process)?))
        },
    },
];
