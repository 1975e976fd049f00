//! MSG-BUF: msgPtr (ABI.md §1.2, §4.1 step 9, §4.2, §4.3, §4.4): null,
//! kernel-half, non-canonical, unmapped and read-only pointers, buffers that
//! run into an unmapped page, for each operation; and the caller's memory
//! changing while its call waits.

use abi::function::{REPLY, REPLY_RECEIVE, USER_BASE};
use abi::kcall::protection;
use abi::{Error, TrapArgs};
use userlib::kernel::DoorKind;

use super::kit::{self, Answer, CallJob, MAX, USER_CALL, finished, queued, receive, server};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed, TestPages};
use crate::expect::{Expect, Field, function_bits, sizes};
use userlib::raw::{self, Buffer};

const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// A SEND of 16 bytes (no data) at `pointer` (in `pages`, if given) to a
/// dead user door.
fn send_at(context: &mut Context, pages: Option<&TestPages>, pointer: u64) -> Outcome {
    let client = context.dead_door(DoorKind::User)?;
    let args = TrapArgs {
        arg0: function_bits(USER_BASE),
        arg1: u64::from(client.0),
        arg2: pointer,
        arg3: sizes(16, 0, 0),
    };
    let registers = match pages {
        Some(pages) => pages.trap(args)?,
        None => raw::trap_at(args, None)?,
    };
    Ok(context.observe(registers))
}

/// A RECEIVE offering 16 bytes at `pointer`, with a message queued (so a
/// RECEIVE that wrongly got through would return it); afterwards the message
/// must still be there for a good RECEIVE.
fn receive_at(context: &mut Context, pointer: impl FnOnce(&TestPages) -> u64) -> Outcome {
    let pages = context.test_pages(&[0x11; 64])?;
    let door = context.user_door()?;
    let call = queued(context, door.client, b"still here", 16)?;
    let args = TrapArgs {
        arg0: function_bits(abi::function::RECEIVE.0),
        arg1: u64::from(door.owner.0),
        arg2: pointer(&pages),
        arg3: sizes(16, 0, 0),
    };
    let registers = pages.trap(args)?;
    let (served, mut buffer) = receive(door.owner, MAX)?;
    context.check(
        served.bytes.get(..10) == Some(&b"still here"[..]),
        "after the refused RECEIVE the message was not delivered to a good one",
    );
    kit::reply(&mut buffer, &Answer::default())?;
    let _ = finished(context, &call, "the caller")?;
    Ok(context.observe(registers))
}

/// A call held by this thread: the caller's job and the receive buffer.
fn hold(context: &mut Context) -> Result<(CallJob, Buffer), Failed> {
    let door = context.user_door()?;
    let call = queued(context, door.client, b"ping", 64)?;
    let (served, buffer) = receive(door.owner, MAX)?;
    context.check_registers(
        "the server's RECEIVE",
        &served.received,
        &TrapArgs::received(
            USER_CALL,
            0,
            served.msg_ptr,
            abi::MessageSizes::from_bits(sizes(64, 4, 0)),
        ),
    );
    Ok((call, buffer))
}

/// After a refused REPLY: the caller must still be blocked; a good reply
/// then completes its call.
fn release(context: &mut Context, call: &CallJob, buffer: &mut Buffer) -> Result<(), Failed> {
    context.settle();
    context.check(
        !call.finished(),
        "the caller returned although no reply was delivered",
    );
    let done = kit::reply(buffer, &Answer::data(b"pong"))?;
    context.check_registers("the good REPLY", &done, &TrapArgs::default());
    let call = finished(context, call, "the caller")?;
    context.check_registers(
        "the caller's SEND after the good REPLY",
        &call.registers,
        &kit::replied(u32::from_le_bytes(*b"pong"), 0, 4, 0),
    );
    Ok(())
}

/// A REPLY (or REPLY_RECEIVE) of 8 bytes at `pointer` to a held call, then
/// [`release`].
fn reply_at(
    context: &mut Context,
    function: abi::function::Function,
    pointer: impl FnOnce(&TestPages) -> u64,
) -> Outcome {
    let pages = context.test_pages(&[0x22; 64])?;
    let (call, mut buffer) = hold(context)?;
    let args = TrapArgs {
        arg0: function_bits(function.0),
        arg1: 0,
        arg2: pointer(&pages),
        arg3: sizes(8, 8, 0),
    };
    let registers = pages.trap(args)?;
    release(context, &call, &mut buffer)?;
    Ok(context.observe(registers))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-BUF-001",
        rule: "SEND: a null msgPtr with a total size of 16 is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| send_at(context, None, 0),
    },
    Case {
        id: "MSG-BUF-002",
        rule: "SEND: a msgPtr in the kernel half is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| send_at(context, None, KERNEL_HALF),
    },
    Case {
        id: "MSG-BUF-003",
        rule: "SEND: a msgPtr in an unmapped page is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[])?;
            send_at(context, Some(&pages), pages.unmapped)
        },
    },
    Case {
        id: "MSG-BUF-004",
        rule: "SEND: a read-only buffer is BAD_BUFFER, since the reply must land there",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[0; 16])?;
            send_at(context, Some(&pages), pages.read_only)
        },
    },
    Case {
        id: "MSG-BUF-005",
        rule: "SEND: a buffer that runs from a writable page into an unmapped one is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[])?;
            send_at(context, Some(&pages), pages.unmapped - 8)
        },
    },
    Case {
        id: "MSG-BUF-006",
        rule: "SEND: the whole buffer must be mapped, not only the message: 8 bytes of data that fit, in a total that runs into an unmapped page, is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[])?;
            let client = context.dead_door(DoorKind::User)?;
            let at = pages.unmapped - 8;
            pages.write(at, b"8 bytes!");
            let args = TrapArgs {
                arg0: function_bits(USER_BASE),
                arg1: u64::from(client.0),
                arg2: at,
                arg3: sizes(16, 8, 0),
            };
            Ok(context.observe(pages.trap(args)?))
        },
    },
    Case {
        id: "MSG-BUF-007",
        rule: "SEND: a buffer in the program's own code (mapped, not writable) is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            let code = (send_at as fn(&mut Context, Option<&TestPages>, u64) -> Outcome
                as *const ())
                .expose_provenance() as u64;
            send_at(context, None, code & !0xf)
        },
    },
    Case {
        id: "MSG-BUF-008",
        rule: "SEND: a non-canonical msgPtr (0x0000800000000000, just past the user half) is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| send_at(context, None, 0x0000_8000_0000_0000),
    },
    Case {
        id: "MSG-BUF-009",
        rule: "SEND: a buffer that ends exactly at the end of its page is fine and its message is delivered",
        section: "1.2",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(16, 4, 0))
            .with_buffer(&[(0, Field::Bytes(b"edge"))]),
        run: |context| {
            let pages = context.test_pages(&[])?;
            let door = context.user_door()?;
            let server = server(context, door.owner, MAX, Some(Answer::default()))?;
            context.settle();
            let at = pages.unmapped - 16;
            pages.write(at, b"edge");
            let args = TrapArgs {
                arg0: function_bits(USER_BASE),
                arg1: u64::from(door.client.0),
                arg2: at,
                arg3: sizes(16, 4, 0),
            };
            let registers = pages.trap(args)?;
            let served = finished(context, &server, "the server")?;
            context.check_registers("the caller's SEND", &registers, &kit::replied(0, 0, 0, 0));
            Ok(context.observe_buffer(served.received, served.msg_ptr, served.bytes))
        },
    },
    Case {
        id: "MSG-BUF-010",
        rule: "SEND: a buffer that runs past the end of the user half is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| send_at(context, None, 0x0000_7fff_ffff_fff8),
    },
    Case {
        id: "MSG-BUF-011",
        rule: "RECEIVE: a null msgPtr with a total size of 16 is BAD_BUFFER, and the queued message stays queued",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadBuffer),
        run: |context| receive_at(context, |_| 0),
    },
    Case {
        id: "MSG-BUF-012",
        rule: "RECEIVE: a read-only buffer is BAD_BUFFER",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadBuffer),
        run: |context| receive_at(context, |pages| pages.read_only),
    },
    Case {
        id: "MSG-BUF-013",
        rule: "RECEIVE: a buffer that runs into an unmapped page is BAD_BUFFER",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadBuffer),
        run: |context| receive_at(context, |pages| pages.unmapped - 8),
    },
    Case {
        id: "MSG-BUF-014",
        rule: "RECEIVE: a buffer in the kernel half is BAD_BUFFER",
        section: "4.2",
        decisions: &[],
        expect: Expect::error("RECEIVE", Error::BadBuffer),
        run: |context| receive_at(context, |_| KERNEL_HALF),
    },
    Case {
        id: "MSG-BUF-015",
        rule: "REPLY: a null msgPtr with a total size of 8 is BAD_BUFFER; the caller stays blocked and a good REPLY then reaches it",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::BadBuffer),
        run: |context| reply_at(context, REPLY, |_| 0),
    },
    Case {
        id: "MSG-BUF-016",
        rule: "REPLY: a reply buffer in an unmapped page is BAD_BUFFER; the caller stays blocked",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::BadBuffer),
        run: |context| reply_at(context, REPLY, |pages| pages.unmapped),
    },
    Case {
        id: "MSG-BUF-017",
        rule: "REPLY: a reply buffer that runs into an unmapped page is BAD_BUFFER; the caller stays blocked",
        section: "4.3",
        decisions: &[],
        expect: Expect::error("REPLY", Error::BadBuffer),
        run: |context| reply_at(context, REPLY, |pages| pages.unmapped - 4),
    },
    Case {
        id: "MSG-BUF-018",
        rule: "REPLY: a read-only reply buffer is fine (it only needs to be readable); the caller gets its bytes",
        section: "4.3",
        decisions: &[],
        expect: Expect::reply_done("REPLY"),
        run: |context| {
            let pages = context.test_pages(b"read-only reply")?;
            let (call, _buffer) = hold(context)?;
            let args = TrapArgs {
                arg0: function_bits(REPLY.0),
                arg1: 0,
                arg2: pages.read_only,
                arg3: sizes(16, 15, 0),
            };
            let registers = pages.trap(args)?;
            let call = finished(context, &call, "the caller")?;
            context.check_registers(
                "the caller's SEND",
                &call.registers,
                &kit::replied(
                    u32::from_le_bytes(*b"read"),
                    u32::from_le_bytes(*b"-onl"),
                    15,
                    0,
                ),
            );
            context.check(
                call.bytes.get(..15) == Some(&b"read-only reply"[..]),
                "the caller's buffer does not hold the reply's 15 bytes",
            );
            Ok(context.observe(registers))
        },
    },
    Case {
        id: "MSG-BUF-019",
        rule: "REPLY_RECEIVE: a read-only buffer is BAD_BUFFER (the next message lands there); nothing is replied (arg2 0), the caller stays blocked",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::BadBuffer),
        run: |context| reply_at(context, REPLY_RECEIVE, |pages| pages.read_only),
    },
    Case {
        id: "MSG-BUF-020",
        rule: "REPLY_RECEIVE: a null msgPtr with a total size of 8 is BAD_BUFFER; the caller stays blocked",
        section: "4.4",
        decisions: &[],
        expect: Expect::error("REPLY_RECEIVE", Error::BadBuffer),
        run: |context| reply_at(context, REPLY_RECEIVE, |_| 0),
    },
    Case {
        id: "MSG-BUF-021",
        rule: "a caller whose buffer is unmapped while its call is served fails with BAD_BUFFER when the reply cannot be written",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("the caller's SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[])?;
            let door = context.user_door()?;
            let at = pages.writable;
            pages.write(at, b"soon gone");
            let client = door.client;
            let held = pages.clone();
            let call = context.job(move || {
                let args = TrapArgs {
                    arg0: function_bits(USER_BASE),
                    arg1: u64::from(client.0),
                    arg2: at,
                    arg3: sizes(64, 9, 0),
                };
                held.trap(args)
            })?;
            context.settle();
            let (served, mut buffer) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..9) == Some(&b"soon gone"[..]),
                "the server did not receive the caller's message",
            );
            pages.unmap(at, abi::PAGE_BYTES)?;
            let _ = kit::reply(&mut buffer, &Answer::data(b"too late"))?;
            context.settle();
            match call.take() {
                Some(registers) => Ok(context.observe(registers?)),
                None => Err(Failed(alloc::string::String::from(
                    "the caller is still blocked after the reply",
                ))),
            }
        },
    },
    Case {
        id: "MSG-BUF-022",
        rule: "a queued sender whose buffer is unmapped fails with BAD_BUFFER at delivery; the receiver gets the next call instead",
        section: "4.1",
        decisions: &[],
        expect: Expect::error("the first caller's SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.test_pages(&[])?;
            let door = context.user_door()?;
            let at = pages.writable;
            pages.write(at, b"first");
            let client = door.client;
            let held = pages.clone();
            let first = context.job(move || {
                let args = TrapArgs {
                    arg0: function_bits(USER_BASE),
                    arg1: u64::from(client.0),
                    arg2: at,
                    arg3: sizes(64, 5, 0),
                };
                held.trap(args)
            })?;
            context.settle();
            pages.unmap(at, abi::PAGE_BYTES)?;
            let second = queued(context, door.client, b"second", 64)?;
            let (served, mut buffer) = receive(door.owner, MAX)?;
            context.check(
                served.bytes.get(..6) == Some(&b"second"[..]),
                "the receiver did not get the second call",
            );
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &second, "the second caller")?;
            match first.take() {
                Some(registers) => Ok(context.observe(registers?)),
                None => Err(Failed(alloc::string::String::from(
                    "the first caller is still blocked",
                ))),
            }
        },
    },
    Case {
        id: "MSG-BUF-023",
        rule: "SEND: a buffer that runs from a writable page into a read-only one is BAD_BUFFER",
        section: "1.2",
        decisions: &[],
        expect: Expect::error("SEND", Error::BadBuffer),
        run: |context| {
            let pages = context.map_pages(2)?;
            let read_only = pages.base() + abi::PAGE_BYTES;
            pages.protect(read_only, abi::PAGE_BYTES, protection::READ)?;
            let client = context.dead_door(DoorKind::User)?;
            let args = TrapArgs {
                arg0: function_bits(USER_BASE),
                arg1: u64::from(client.0),
                arg2: read_only - 8,
                arg3: sizes(16, 0, 0),
            };
            Ok(context.observe(pages.trap(args)?))
        },
    },
    Case {
        id: "MSG-BUF-024",
        rule: "a kernel function's buffer is checked like any SEND's: DESCRIPTOR_INFO with a null msgPtr is BAD_BUFFER, and so is one with a read-only buffer",
        section: "6",
        decisions: &[],
        expect: Expect::error("DESCRIPTOR_INFO", Error::BadBuffer),
        run: |context| {
            use zerocopy::IntoBytes;
            let event = context.event()?;
            let request = abi::kcall::DescriptorRequest::new(event, abi::Rights::NONE);
            let pages = context.test_pages(request.as_bytes())?;
            let info = |pointer: u64| TrapArgs {
                arg0: function_bits(abi::KernelFunction::DescriptorInfo as i32),
                arg1: 0,
                arg2: pointer,
                arg3: sizes(64, 8, 0),
            };
            let read_only = pages.trap(info(pages.read_only))?;
            context.check_registers(
                "DESCRIPTOR_INFO in a read-only buffer",
                &read_only,
                &TrapArgs::error(Error::BadBuffer),
            );
            Ok(context.observe(raw::trap_at(info(0), None)?))
        },
    },
];
