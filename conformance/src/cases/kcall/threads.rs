//! THREAD_CREATE's refusals and the order in which EVENT_SIGNAL wakes the
//! threads waiting on an event (ABI.md §6, §6.1).

use abi::kcall::{DEFAULT_PRIORITY, ThreadCreateRequest};
use abi::{Descriptor, KernelFunction, TrapArgs};
use userlib::kernel;
use userlib::raw::Buffer;
use zerocopy::IntoBytes;

use super::super::kit::{self, finished, replied};
use super::memory::{PAGE, RW};
use crate::case::Outcome;
use crate::context::{Context, Failed};

/// Where a thread THREAD_CREATE wrongly made would start: it ends at once.
extern "C" fn exit_at_once(_argument: u64) -> ! {
    kernel::thread_exit(0)
}

/// A stack for the threads of a case: four pages, and the entry point.
pub struct Stack {
    /// The first address above the stack.
    pub top: u64,
    /// [`exit_at_once`]'s address.
    pub entry: u64,
    base: u64,
    used: bool,
}

impl Stack {
    /// Maps the stack.
    pub fn new() -> Result<Self, Failed> {
        let base = kernel::map_anonymous(0, 4 * PAGE, RW)?;
        Ok(Stack {
            top: base + 4 * PAGE,
            entry: (exit_at_once as extern "C" fn(u64) -> ! as *const ()).expose_provenance()
                as u64,
            base,
            used: false,
        })
    }

    /// THREAD_CREATE with these values; a thread it made anyway is
    /// released (its handle closed), and the stack is then kept mapped.
    pub fn create(
        &mut self,
        context: &Context,
        entry: u64,
        stack_top: u64,
        priority: u32,
    ) -> Outcome {
        let request = ThreadCreateRequest::new(entry, stack_top, 0, priority);
        let call = kit::send(
            KernelFunction::ThreadCreate.function(),
            Descriptor::NULL,
            request.as_bytes(),
            &[],
            64,
        )?;
        if call.registers.arg0 != 0xffff_ffff {
            self.used = true;
            if let Some(number) = call.bytes.get(8..12) {
                let handle = u32::from_le_bytes([number[0], number[1], number[2], number[3]]);
                let _ = kernel::close(Descriptor(handle));
            }
        }
        Ok(context.observe(call.registers))
    }

    /// More of a case's rule: THREAD_CREATE with these values must be
    /// INVALID_ARGUMENT.
    pub fn also(
        &mut self,
        context: &mut Context,
        what: &str,
        entry: u64,
        stack_top: u64,
        priority: u32,
    ) -> Result<(), Failed> {
        let observed = self.create(context, entry, stack_top, priority)?;
        context.check_registers(
            &alloc::format!("THREAD_CREATE with {what}"),
            &observed.registers,
            &TrapArgs::error(abi::Error::InvalidArgument),
        );
        Ok(())
    }

    /// Unmaps the stack unless a thread may have run on it.
    pub fn release(self, context: &mut Context) {
        if self.used {
            // Let it end first; its stack stays mapped all the same.
            context.settle();
        } else {
            let _ = kernel::unmap(self.base, 4 * PAGE);
        }
    }
}

/// MSG-KCALL-054: a priority above 31 or above the caller's.
pub fn priority(context: &mut Context) -> Outcome {
    let mut stack = Stack::new()?;
    let (entry, top) = (stack.entry, stack.top);
    stack.also(
        context,
        "priority 17, above the calling thread's 16",
        entry,
        top,
        DEFAULT_PRIORITY + 1,
    )?;
    let observed = stack.create(context, entry, top, abi::kcall::MAX_PRIORITY + 1);
    stack.release(context);
    observed
}

/// MSG-KCALL-055: a stack top not 16-aligned.
pub fn unaligned_stack(context: &mut Context) -> Outcome {
    let mut stack = Stack::new()?;
    let (entry, top) = (stack.entry, stack.top);
    let observed = stack.create(context, entry, top - 8, DEFAULT_PRIORITY);
    stack.release(context);
    observed
}

/// MSG-KCALL-056: an entry or a stack outside the user half.
pub fn outside_user_half(context: &mut Context) -> Outcome {
    let mut stack = Stack::new()?;
    let (entry, top) = (stack.entry, stack.top);
    stack.also(
        context,
        "an entry in the kernel half",
        super::memory::KERNEL_HALF,
        top,
        DEFAULT_PRIORITY,
    )?;
    stack.also(
        context,
        "a non-canonical entry (0x0000800000000000)",
        0x0000_8000_0000_0000,
        top,
        DEFAULT_PRIORITY,
    )?;
    let observed = stack.create(context, entry, super::memory::KERNEL_HALF, DEFAULT_PRIORITY);
    stack.release(context);
    observed
}

/// A thread of the runner waiting on `event` (EVENT_WAIT by raw trap).
fn waiter(
    context: &mut Context,
    event: Descriptor,
) -> Result<crate::context::Job<Result<TrapArgs, Failed>>, Failed> {
    context.job(move || {
        let mut buffer = Buffer::new();
        Ok(buffer.kernel_call(KernelFunction::EventWait, event, &[], 64))
    })
}

/// MSG-KCALL-075: waiters block until a signal, the longest waiter first.
pub fn longest_waiter_first(context: &mut Context) -> Outcome {
    let event = context.event()?;
    // Each waiter is blocked in EVENT_WAIT before the next one starts.
    let first = waiter(context, event)?;
    context.settle();
    let second = waiter(context, event)?;
    context.settle();
    context.check(
        !first.finished() && !second.finished(),
        "a waiter returned from EVENT_WAIT on an event whose count is 0",
    );
    kernel::event_signal(event)?;
    context.settle();
    let woken = (first.finished(), second.finished());
    context.check(
        woken == (true, false),
        &alloc::format!(
            "after one EVENT_SIGNAL (first waiter woken, second waiter woken) is {woken:?}, not (true, false)"
        ),
    );
    kernel::event_signal(event)?;
    let second = finished(context, &second, "the second waiter")?;
    context.check_registers(
        "the second waiter's EVENT_WAIT",
        &second,
        &replied(0, 0, 8, 0),
    );
    let first = finished(context, &first, "the first waiter")?;
    Ok(context.observe(first))
}
