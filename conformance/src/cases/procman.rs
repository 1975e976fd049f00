//! MSG-PROCMAN: process-manager numbers (0x400-0xFFF) sent to the NULL
//! target, which the kernel routes to procman's door (ABI.md §2, §4.1 step
//! 4, §9 D6).
//!
//! These cases describe the system *before procman exists*: with no
//! process manager running, step 4 answers PEER_DIED. When procman lands
//! (issue 4) the runner boots with one, and these expectations change to
//! procman's answers; the IDs stay.

use abi::Error;
use abi::function::{Function, PROCESS_MANAGER_BASE, SYSTEM_BASE};

use super::kit;
use crate::case::Case;
use crate::expect::{Expect, function_bits, sizes};
use crate::peer::Step;

/// The cases.
pub static CASES: &[Case] = &[
    Case {
        id: "MSG-PROCMAN-001",
        rule: "no procman yet: the first process-manager number (0x400) to the NULL target is PEER_DIED",
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
        rule: "no procman yet: the last process-manager number (0xFFF) to the NULL target is PEER_DIED",
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
        rule: "no procman yet: an unprivileged process's process-manager call to the NULL target is PEER_DIED",
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
];
