//! `crate::refusal` against the slow path: in a random world, after random
//! traps, a trap the registers alone refuse gets exactly that error from
//! `Kernel::trap`, and the whole kernel and machine state stays as it was
//! (which is what lets the arch layer answer it without the kernel).

use abi::{Error, TrapArgs};
use proptest::prelude::*;

use super::random::{apply, op, random_world, raw_args};
use crate::refusal::refused_by_registers;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_refusal_by_registers_is_the_kernels_own(
        ops in prop::collection::vec(op(), 0..24),
        traps in prop::collection::vec((raw_args(), any::<usize>()), 1..24),
    ) {
        let mut w = random_world();
        for op in &ops {
            apply(&mut w, op);
        }
        for (args, pick) in traps {
            let threads: Vec<_> = w.k.threads.ids().filter(|t| w.runnable(*t)).collect();
            let Some(&t) = threads.get(pick % threads.len().max(1)) else { break };
            w.run(t);
            let _ = w.k.take_resume(t);
            let Some(error) = refused_by_registers(&args) else {
                // Not decided by the registers: the kernel runs it (and
                // the world moves on).
                w.k.trap(&mut w.m, args);
                let _ = w.k.take_resume(t);
                continue;
            };
            let before = w.whole_state();
            let result = w.trap(t, args);
            prop_assert_eq!(result, Some(TrapArgs::error(error)), "{:?}", args);
            prop_assert!(w.whole_state() == before, "a refusal by registers changed the state: {:?}", args);
        }
    }
}

/// Each refusal the registers decide, one example each, and the traps
/// they must leave to the kernel.
#[test]
fn the_registers_decide_these_and_no_more() {
    use abi::function::Function;
    use abi::message::MessageSizes;
    use abi::{Descriptor, KernelFunction};
    let sizes = |total: u16, data: u16| {
        MessageSizes::new()
            .with_total_size(total)
            .with_data_size(data)
    };
    let send = |function: i32, target: u32, sizes: MessageSizes| {
        TrapArgs::send(Function(function), Descriptor(target), 0x1000, sizes)
    };
    let cases = [
        (send(0, 0, sizes(0, 0)), Some(Error::InvalidFunction)),
        (send(-1, 0, sizes(0, 0)), Some(Error::InvalidFunction)),
        (
            send(0x8000, 0, sizes(0, 0)),
            Some(Error::FunctionOutOfRange),
        ),
        (
            send(0x1000, 0, sizes(0, 0)),
            Some(Error::FunctionOutOfRange),
        ),
        // Bad sizes are the registers' refusal only where the function is
        // refused too (the kernel checks the sizes first); a call the
        // kernel runs checks them there.
        (send(0x8000, 0, sizes(16, 32)), Some(Error::BadSizes)),
        (send(0, 0, sizes(16, 32)), Some(Error::BadSizes)),
        (send(0x8000, 3, sizes(16, 32)), None),
        (send(0x8000, 3, sizes(64, 64)), None),
        (send(0x400, 0, sizes(0, 0)), None),
        (send(KernelFunction::Close as i32, 1, sizes(0, 0)), None),
        (
            TrapArgs {
                arg0: 1 << 40,
                arg1: 0,
                arg2: 0,
                arg3: 0,
            },
            Some(Error::ReservedBits),
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(refused_by_registers(&args), expected, "{args:?}");
    }
}
