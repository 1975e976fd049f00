//! MSG-COOKIE: cookies (ABI.md §5, §9 D8): 0 on a new reference, stored by
//! REPLY and REPLY_RECEIVE into the very reference the caller used, all 64
//! bits, one per reference (duplicates, copies and moves), never revealed by
//! DESCRIPTOR_INFO.

use abi::function::USER_BASE;
use abi::kcall::DescriptorRequest;
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, Rights, TrapArgs};
use zerocopy::IntoBytes;

use super::kit::{
    self, Answer, MAX, SENDER_FILL, USER_CALL, error, finished, queued, receive, replied, server,
};
use crate::case::{Case, Outcome};
use crate::context::{Context, Failed};
use crate::expect::{Expect, Field, sizes};
use crate::peer::Step;

const COOKIE: u64 = 0x1234_5678_9abc_def0;
const OTHER: u64 = 0x0fed_cba9_8765_4321;

/// The server's RECEIVE of one call: its registers and msgPtr.
#[derive(Clone, Copy)]
struct Seen {
    registers: TrapArgs,
    msg_ptr: u64,
}

impl Seen {
    fn observe(self, context: &Context) -> crate::expect::Observed {
        context.observe_buffer(self.registers, self.msg_ptr, alloc::vec::Vec::new())
    }
}

/// One call through `via` (no data, total 16) served by a server thread on
/// `owner` that replies storing `cookie`: what the server's RECEIVE saw.
fn exchange(
    context: &mut Context,
    owner: Descriptor,
    via: Descriptor,
    cookie: u64,
) -> Result<Seen, Failed> {
    let server = server(context, owner, MAX, Some(Answer::cookie(cookie)))?;
    context.settle();
    let call = kit::send(USER_CALL, via, &[], &[], 16)?;
    context.check_registers("the SEND", &call.registers, &replied(0, 0, 0, 0));
    let served = finished(context, &server, "the server")?;
    Ok(Seen {
        registers: served.received,
        msg_ptr: served.msg_ptr,
    })
}

/// Sets `cookie` through `client`, then observes the next call's cookie.
fn round(context: &mut Context, cookie: u64) -> Outcome {
    let door = context.user_door()?;
    exchange(context, door.owner, door.client, cookie)?;
    let seen = exchange(context, door.owner, door.client, 0)?;
    Ok(seen.observe(context))
}

/// A peer's call through its descriptor 2 to `owner`: the runner's RECEIVE.
fn peer_calls(context: &mut Context, owner: Descriptor, initial: DescriptorSlot) -> Outcome {
    let peer = context.peer(&[initial])?;
    peer.start(0, &[Step::send(USER_CALL, 2, &[], &[], 16)])?;
    context.settle();
    let (served, mut buffer) = receive(owner, MAX)?;
    kit::reply(&mut buffer, &Answer::default())?;
    let results = kit::peer_results(context, &peer, 0)?;
    context.check(
        results.first().map(|r| r.registers) == Some(replied(0, 0, 0, 0)),
        "the peer's call did not complete",
    );
    Ok(context.observe_buffer(served.received, served.msg_ptr, alloc::vec::Vec::new()))
}

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-COOKIE-001",
        rule: "a new reference's cookie is 0: the first call through a fresh client reference delivers 0",
        section: "5",
        decisions: &[],
        expect: Expect::received("the server's RECEIVE", USER_BASE, 0, sizes(16, 0, 0)),
        run: |context| {
            let door = context.user_door()?;
            let seen = exchange(context, door.owner, door.client, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-002",
        rule: "REPLY stores its arg1 in the caller's reference, replacing the cookie an earlier reply stored: the next call through it delivers 0x123456789ABCDEF0",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the third call's RECEIVE",
            USER_BASE,
            COOKIE,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            exchange(context, door.owner, door.client, OTHER)?;
            let second = exchange(context, door.owner, door.client, COOKIE)?;
            context.check(
                second.registers.arg1 == OTHER,
                "the second call did not deliver the cookie the first reply stored",
            );
            let seen = exchange(context, door.owner, door.client, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-003",
        rule: "cookies are 64 bits: 0xFFFFFFFFFFFFFFFF comes back whole",
        section: "5",
        decisions: &["D8"],
        expect: Expect::received(
            "the second call's RECEIVE",
            USER_BASE,
            u64::MAX,
            sizes(16, 0, 0),
        ),
        run: |context| round(context, u64::MAX),
    },
    Case {
        id: "MSG-COOKIE-004",
        rule: "cookies are 64 bits: 0x8000000000000001 comes back neither truncated nor sign-extended",
        section: "5",
        decisions: &["D8"],
        expect: Expect::received(
            "the second call's RECEIVE",
            USER_BASE,
            0x8000_0000_0000_0001,
            sizes(16, 0, 0),
        ),
        run: |context| round(context, 0x8000_0000_0000_0001),
    },
    Case {
        id: "MSG-COOKIE-005",
        rule: "cookies are per reference: a DUPLICATE made after a cookie was set starts at 0",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the call through the duplicate",
            USER_BASE,
            0,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            exchange(context, door.owner, door.client, COOKIE)?;
            let copy = context.duplicate(door.client, Rights::SEND)?;
            let seen = exchange(context, door.owner, copy, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-006",
        rule: "cookies are per reference: setting a duplicate's cookie leaves the original's",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the call through the original",
            USER_BASE,
            COOKIE,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let copy = context.duplicate(door.client, Rights::SEND)?;
            exchange(context, door.owner, door.client, COOKIE)?;
            exchange(context, door.owner, copy, OTHER)?;
            let through_copy = exchange(context, door.owner, copy, 0)?;
            context.check(
                through_copy.registers.arg1 == OTHER,
                "the duplicate did not keep its own cookie",
            );
            let seen = exchange(context, door.owner, door.client, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-007",
        rule: "a COPY in a message creates a reference with cookie 0, whatever the sender's reference holds; the sender's keeps its own",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the runner's RECEIVE of the peer's call",
            USER_BASE,
            0,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            exchange(context, door.owner, door.client, COOKIE)?;
            let observed = peer_calls(
                context,
                door.owner,
                DescriptorSlot::copy(door.client, Rights::SEND),
            )?;
            let sender = exchange(context, door.owner, door.client, 0)?;
            context.check(
                sender.registers.arg1 == COOKIE,
                "the sender's reference lost its cookie when it was copied",
            );
            Ok(observed)
        },
    },
    Case {
        id: "MSG-COOKIE-008",
        rule: "a MOVE keeps the reference and its cookie",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the runner's RECEIVE of the peer's call",
            USER_BASE,
            COOKIE,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let moving = context.duplicate(door.client, Rights::SEND.union(Rights::TRANSFER))?;
            exchange(context, door.owner, moving, COOKIE)?;
            context.forget(moving);
            peer_calls(
                context,
                door.owner,
                DescriptorSlot::moving(moving, Rights::SEND),
            )
        },
    },
    Case {
        id: "MSG-COOKIE-009",
        rule: "REPLY_RECEIVE stores its arg1 in the answered caller's reference, as REPLY does",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the next call through that reference",
            USER_BASE,
            COOKIE,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let other = context.duplicate(door.client, Rights::SEND)?;
            let first = queued(context, door.client, &[], 16)?;
            let (_, mut buffer) = receive(door.owner, MAX)?;
            let second = kit::caller(context, USER_CALL, other, &[], &[], 16)?;
            context.settle();
            let next = buffer.reply_receive(COOKIE, sizes(MAX, 0, 0));
            context.check(
                next.arg0 == u64::from(USER_BASE as u32),
                "REPLY_RECEIVE did not receive the second call",
            );
            kit::reply(&mut buffer, &Answer::default())?;
            let _ = finished(context, &first, "the first caller")?;
            let _ = finished(context, &second, "the second caller")?;
            let seen = exchange(context, door.owner, door.client, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-010",
        rule: "the cookie lands on the reference the caller used, not on a later reference that reused its number",
        section: "4.3",
        decisions: &[],
        expect: Expect::received(
            "the call through the new reference",
            USER_BASE,
            0,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let spare = context.duplicate(door.client, Rights::SEND.union(Rights::DUPLICATE))?;
            let used = context.duplicate(door.client, Rights::SEND)?;
            let call = queued(context, used, &[], 16)?;
            let (_, mut buffer) = receive(door.owner, MAX)?;
            context.close(used)?;
            let reused = context.duplicate(spare, Rights::SEND)?;
            if reused != used {
                return Err(Failed(alloc::format!(
                    "the new reference took {} instead of the freed {}",
                    reused.0,
                    used.0
                )));
            }
            kit::reply(&mut buffer, &Answer::cookie(COOKIE))?;
            let _ = finished(context, &call, "the caller")?;
            let seen = exchange(context, door.owner, reused, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-011",
        rule: "a refused REPLY (REPLY_TOO_LARGE) stores no cookie; the reply that is delivered stores its own",
        section: "5",
        decisions: &["D1"],
        expect: Expect::received("the next call's RECEIVE", USER_BASE, OTHER, sizes(16, 0, 0)),
        run: |context| {
            let door = context.user_door()?;
            let call = queued(context, door.client, &[], 16)?;
            let (_, mut buffer) = receive(door.owner, MAX)?;
            let refused = kit::reply(
                &mut buffer,
                &Answer {
                    cookie: COOKIE,
                    data: alloc::vec![0; 24],
                    slots: alloc::vec::Vec::new(),
                },
            )?;
            context.check_registers(
                "the REPLY that is too large",
                &refused,
                &error(Error::ReplyTooLarge),
            );
            kit::reply(&mut buffer, &Answer::cookie(OTHER))?;
            let _ = finished(context, &call, "the caller")?;
            let seen = exchange(context, door.owner, door.client, 0)?;
            Ok(seen.observe(context))
        },
    },
    Case {
        id: "MSG-COOKIE-012",
        rule: "DESCRIPTOR_INFO does not reveal cookies: its reply is exactly 16 bytes (0, 0, kind, rights)",
        section: "5",
        decisions: &[],
        expect: Expect::replied("DESCRIPTOR_INFO", 0, 0, 16, 0).with_buffer(&[
            (
                0,
                Field::Bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x0d, 0, 0, 0]),
            ),
            (
                16,
                Field::Fill {
                    length: 48,
                    byte: SENDER_FILL,
                },
            ),
        ]),
        run: |context| {
            let door = context.user_door()?;
            exchange(context, door.owner, door.client, u64::MAX)?;
            let request = DescriptorRequest::new(door.client, abi::Rights::NONE);
            let call = kit::send(
                KernelFunction::DescriptorInfo.function(),
                Descriptor::NULL,
                request.as_bytes(),
                &[],
                64,
            )?;
            Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
        },
    },
    Case {
        id: "MSG-COOKIE-013",
        rule: "RECEIVE delivers the cookie the reference holds when the call is received: a call queued before a reply changed it carries the new one",
        section: "5",
        decisions: &[],
        expect: Expect::received(
            "the second call's RECEIVE",
            USER_BASE,
            COOKIE,
            sizes(16, 0, 0),
        ),
        run: |context| {
            let door = context.user_door()?;
            let first = queued(context, door.client, &[], 16)?;
            let (_, mut buffer) = receive(door.owner, MAX)?;
            let second = queued(context, door.client, &[], 16)?;
            kit::reply(&mut buffer, &Answer::cookie(COOKIE))?;
            let _ = finished(context, &first, "the first caller")?;
            let (served, mut next) = receive(door.owner, MAX)?;
            kit::reply(&mut next, &Answer::default())?;
            let _ = finished(context, &second, "the second caller")?;
            Ok(context.observe_buffer(served.received, served.msg_ptr, alloc::vec::Vec::new()))
        },
    },
];
