//! MSG-RET: msgRetVal and msgErrno (ABI.md §3, §9 D2): the first and
//! second little-endian words of the reply data when it has at least 4 and
//! 8 bytes, zero otherwise; error replies against kernel failures.

use super::kit::{self, Answer, MAX};
use crate::case::{Case, Outcome};
use crate::context::Context;
use crate::expect::{Expect, Field, function_bits, pattern};
use abi::TrapArgs;

/// A call in a buffer of `total` answered with `reply`; the caller's SEND.
fn answered(context: &mut Context, reply: &[u8], total: u16) -> Outcome {
    let door = context.user_door()?;
    let (call, _) = kit::round_trip(
        context,
        door,
        kit::USER_CALL,
        b"q",
        total,
        Answer::data(reply),
    )?;
    Ok(context.observe_buffer(call.registers, call.msg_ptr, call.bytes))
}

/// A call whose buffer starts 4 bytes before a page boundary (both pages
/// mapped), answered with `reply`: the reply's first two words land on two
/// pages, and arg0 and arg1 must still be both of them.
fn answered_across_pages(context: &mut Context, reply: &[u8]) -> Outcome {
    let door = context.user_door()?;
    let pages = context.map_pages(2)?;
    let at = pages.base() + abi::PAGE_BYTES - 4;
    let server = kit::server(context, door.owner, MAX, Some(Answer::data(reply)))?;
    context.settle();
    let (bytes, arg3) = crate::peer::message(b"q", &[], 64);
    pages.write(at, &bytes);
    let args = TrapArgs {
        arg0: function_bits(kit::USER_CALL.0),
        arg1: u64::from(door.client.0),
        arg2: at,
        arg3,
    };
    let registers = pages.trap(args)?;
    kit::finished(context, &server, "the server")?;
    Ok(context.observe(registers))
}

/// Another reply length of the same rule: a call answered with `length`
/// bytes of the pattern must return its first word (4 bytes or more) and
/// second word (8 or more), the data size, and the bytes.
fn also(context: &mut Context, length: usize) -> Result<(), crate::context::Failed> {
    let reply = kit::pattern(41, length);
    let call = answered(context, &reply, MAX)?;
    let word = |at: usize| {
        reply
            .get(at..at + 4)
            .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    context.check_registers(
        &alloc::format!("the SEND answered with {length} bytes"),
        &call.registers,
        &kit::replied(word(0), word(4), length as u16, 0),
    );
    context.check(
        call.buffer.get(..length) == Some(&reply[..]),
        &alloc::format!("the {length} bytes of the reply did not arrive"),
    );
    Ok(())
}

const fn word(seed: u8, at: usize) -> u32 {
    u32::from_le_bytes([
        pattern(seed, at),
        pattern(seed, at + 1),
        pattern(seed, at + 2),
        pattern(seed, at + 3),
    ])
}

const SEVEN: &[u8] = &[1, 2, 3, 4, 5, 6, 7];
const EIGHT: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8];
const TWELVE: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-RET-001",
        rule: "a reply of 0 bytes: msgRetVal 0, msgErrno 0, arg3 0",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0, 0, 0, 0),
        run: |context| answered(context, &[], 64),
    },
    Case {
        id: "MSG-RET-002",
        rule: "a reply of 3 bytes (ff ff ff), like one of 1: msgRetVal 0 (fewer than 4 bytes), msgErrno 0; the bytes arrive",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0, 0, 3, 0)
            .with_buffer(&[(0, Field::Bytes(&[0xff, 0xff, 0xff]))]),
        run: |context| {
            also(context, 1)?;
            answered(context, &[0xff; 3], 64)
        },
    },
    Case {
        id: "MSG-RET-003",
        rule: "a reply of 4 bytes (01 02 03 04): msgRetVal is their little-endian word 0x04030201, msgErrno 0",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0x0403_0201, 0, 4, 0),
        run: |context| answered(context, &[1, 2, 3, 4], 64),
    },
    Case {
        id: "MSG-RET-004",
        rule: "a reply of 7 bytes, like one of 5: msgRetVal the first word, msgErrno 0 (fewer than 8 bytes)",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0x0403_0201, 0, 7, 0)
            .with_buffer(&[(0, Field::Bytes(SEVEN))]),
        run: |context| {
            also(context, 5)?;
            answered(context, SEVEN, 64)
        },
    },
    Case {
        id: "MSG-RET-005",
        rule: "a reply of 8 bytes: msgRetVal the first word, msgErrno the second",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0x0403_0201, 0x0807_0605, 8, 0)
            .with_buffer(&[(0, Field::Bytes(EIGHT))]),
        run: |context| answered(context, EIGHT, 64),
    },
    Case {
        id: "MSG-RET-006",
        rule: "a reply of 12 bytes, like one of 100: the first two words in arg0 and arg1, all its bytes in the buffer",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0x0403_0201, 0x0807_0605, 12, 0)
            .with_buffer(&[(0, Field::Bytes(TWELVE))]),
        run: |context| {
            also(context, 100)?;
            answered(context, TWELVE, 64)
        },
    },
    Case {
        id: "MSG-RET-007",
        rule: "a server's error reply (-1, errno 0x1001): arg0 0x00000000FFFFFFFF, arg1 0x1001, arg3 data size 8, unlike a kernel failure's 0",
        section: "3",
        decisions: &["D2"],
        expect: Expect::replied("SEND", u32::MAX, 0x1001, 8, 0),
        run: |context| answered(context, &[0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0, 0], 64),
    },
    Case {
        id: "MSG-RET-008",
        rule: "an error reply whose errno is a kernel error number (3): only arg3's data size tells it from the kernel failure BAD_DESCRIPTOR",
        section: "3",
        decisions: &["D2"],
        expect: Expect::replied("SEND", u32::MAX, 3, 8, 0),
        run: |context| answered(context, &[0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0], 64),
    },
    Case {
        id: "MSG-RET-009",
        rule: "when msgRetVal is not -1 the second word is the server's to use: 5 and 0xDEADBEEF come back as they are",
        section: "3",
        decisions: &["D2"],
        expect: Expect::replied("SEND", 5, 0xdead_beef, 8, 0),
        run: |context| answered(context, &[5, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde], 64),
    },
    Case {
        id: "MSG-RET-010",
        rule: "msgRetVal -1 with only 4 bytes of data is no error reply: msgErrno 0, data size 4",
        section: "3",
        decisions: &["D2"],
        expect: Expect::replied("SEND", u32::MAX, 0, 4, 0),
        run: |context| answered(context, &[0xff; 4], 64),
    },
    Case {
        id: "MSG-RET-011",
        rule: "the largest reply, 4088 bytes into a caller's buffer of 4095, arrives whole with its first two words in arg0 and arg1",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", word(33, 0), word(33, 4), 4088, 0).with_buffer(&[(
            0,
            Field::Pattern {
                length: 4088,
                seed: 33,
            },
        )]),
        run: |context| answered(context, &kit::pattern(33, 4088), MAX),
    },
    Case {
        id: "MSG-RET-012",
        rule: "a caller's buffer may start anywhere: 4 bytes before a page boundary, an 8-byte reply still gives msgRetVal and msgErrno from both pages",
        section: "3",
        decisions: &[],
        expect: Expect::replied("SEND", 0x0403_0201, 0x0807_0605, 8, 0),
        run: |context| answered_across_pages(context, EIGHT),
    },
];
