//! Interrupting threads and upcall handlers (ABI.md §6.10): THREAD_INTERRUPT,
//! SIGNAL_MASK, a handler per signal number entered through the kernel's
//! upcall frame, and a retrying wrapper for calls that may be interrupted.
//!
//! The handlers are process-wide (a table of plain functions); the upcall
//! registration is per thread ([`register_thread`]). A handler runs on the
//! interrupted thread's stack with its signal masked, and must never
//! unwind or return by any way but its own return (the trampoline then
//! sends UPCALL_RETURN with the kernel's frame).

use core::sync::atomic::{AtomicUsize, Ordering};

use abi::function::KernelFunction;
use abi::upcall::{
    SignalMaskReply, SignalMaskRequest, ThreadInterruptRequest, UpcallFrame, UpcallRegisterRequest,
    UpcallReturnRequest,
};
use abi::{Descriptor, Error};
use zerocopy::IntoBytes;

use crate::message::Message;

/// A signal handler: the signal number, its information word, and the
/// kernel's frame (what the thread resumes when the handler returns; a
/// handler may read it, and change the registers it resumes with).
pub type Handler = fn(signal: u32, info: u64, frame: &mut UpcallFrame);

/// The handler of each signal number, as a function address (0: none).
static HANDLERS: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];

/// Sends a small kernel call and discards the reply's descriptors.
fn call(
    function: KernelFunction,
    target: Descriptor,
    request: &[u8],
    reply: &mut [u8],
) -> Result<(), Error> {
    let mut buffer = [0u8; 64];
    let mut message = Message::over(&mut buffer[..]);
    message.push_data(request).map_err(|_| Error::BadSizes)?;
    let sizes = message.sizes();
    let answer = crate::ipc::send(function.function(), target, message.buffer_mut(), sizes)?;
    message
        .set_arrived(answer.sizes)
        .map_err(|_| Error::BadSizes)?;
    let payload = abi::kcall::REPLY_PAYLOAD_OFFSET;
    if !reply.is_empty() {
        let bytes = buffer
            .get(payload..payload + reply.len())
            .ok_or(Error::BadSizes)?;
        reply.copy_from_slice(bytes);
    }
    Ok(())
}

/// THREAD_INTERRUPT: interrupts the thread (or one thread of the process)
/// `target` names (NULL: the caller), with `signal` (0: none) and `info`.
pub fn interrupt(target: Descriptor, signal: u32, info: u64) -> Result<(), Error> {
    let request = ThreadInterruptRequest::new(signal, info);
    call(
        KernelFunction::ThreadInterrupt,
        target,
        request.as_bytes(),
        &mut [],
    )
}

/// UPCALL_REGISTER for the calling thread: the userlib trampoline as its
/// handler, frames on its own stack, or on `[base, base + size)` when
/// `alternate` is given.
pub fn register_thread(alternate: Option<(u64, u64)>) -> Result<(), Error> {
    let entry = crate::arch::upcall_entry_address();
    let request = match alternate {
        Some((base, size)) => UpcallRegisterRequest::with_stack(entry, base, size),
        None => UpcallRegisterRequest::new(entry),
    };
    call(
        KernelFunction::UpcallRegister,
        Descriptor::NULL,
        request.as_bytes(),
        &mut [],
    )
}

/// UPCALL_REGISTER with a handler address of the caller's choosing (tests:
/// a bad one; 0: none).
pub fn register_raw(request: UpcallRegisterRequest) -> Result<(), Error> {
    call(
        KernelFunction::UpcallRegister,
        Descriptor::NULL,
        request.as_bytes(),
        &mut [],
    )
}

/// SIGNAL_MASK: `how` ([`abi::upcall::mask_how`]) with `mask`; the
/// previous mask and the pending set.
pub fn mask(how: u32, mask: u64) -> Result<SignalMaskReply, Error> {
    let request = SignalMaskRequest::new(how, mask);
    let mut reply = SignalMaskReply::default();
    call(
        KernelFunction::SignalMask,
        Descriptor::NULL,
        request.as_bytes(),
        reply.as_mut_bytes(),
    )?;
    Ok(reply)
}

/// UPCALL_RETURN through the frame at `frame`: returns only when the
/// kernel refused it.
pub fn upcall_return(frame: u64) -> Error {
    let request = UpcallReturnRequest::new(frame);
    match call(
        KernelFunction::UpcallReturn,
        Descriptor::NULL,
        request.as_bytes(),
        &mut [],
    ) {
        Err(error) => error,
        Ok(()) => Error::InvalidFunction,
    }
}

/// Sets the handler of `signal` for every thread of the process (each
/// thread that should take signals calls [`register_thread`]).
pub fn set_handler(signal: u32, handler: Option<Handler>) {
    if let Some(slot) = HANDLERS.get(signal as usize) {
        slot.store(handler.map_or(0, |h| h as usize), Ordering::Release);
    }
}

/// Calls `f` again while it fails with INTERRUPTED: for calls whose
/// repetition is harmless.
pub fn retry<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match f() {
            Err(Error::Interrupted) => continue,
            other => return other,
        }
    }
}

/// Entered by the trampoline (`arch`) with the kernel's three handler
/// arguments: runs the signal's handler, then returns through the frame.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) extern "C" fn dispatch(signal: u64, info: u64, frame: u64) -> ! {
    let handler = HANDLERS
        .get(signal as usize)
        .map_or(0, |slot| slot.load(Ordering::Acquire));
    if handler != 0 {
        let handler: Handler = handler_from(handler);
        let mut copy = read_frame(frame);
        handler(signal as u32, info, &mut copy);
        write_frame(frame, &copy);
    }
    let _ = upcall_return(frame);
    crate::arch::abort()
}

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn handler_from(address: usize) -> Handler {
    // SAFETY: every non-zero value in HANDLERS was stored by `set_handler`
    // from a `Handler`, a function pointer of exactly this type.
    unsafe { core::mem::transmute::<usize, Handler>(address) }
}

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn read_frame(frame: u64) -> UpcallFrame {
    // SAFETY: the kernel wrote an `UpcallFrame` at this 16-byte aligned
    // address of the thread's stack, below every live Rust frame of the
    // interrupted code and above the handler's (it is the handler's
    // caller's area); nothing else refers to it.
    unsafe { core::ptr::read_volatile(frame as usize as *const UpcallFrame) }
}

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn write_frame(frame: u64, value: &UpcallFrame) {
    // SAFETY: as in `read_frame`: the kernel's frame, which only this
    // handler uses until UPCALL_RETURN reads it back.
    unsafe { core::ptr::write_volatile(frame as usize as *mut UpcallFrame, *value) }
}
