//! Process start-up: what the kernel hands the first thread
//! (`abi::process`), turned into a [`Startup`] for the program's main
//! (named with [`crate::entry!`]), whose return value becomes the exit code.

use core::sync::atomic::{AtomicPtr, Ordering};

use abi::Descriptor;

use crate::descriptor::OwnedDescriptor;

/// What a program starts with.
#[derive(Debug)]
pub struct Startup {
    /// The argument bytes its parent passed (SPAWN).
    pub arguments: &'static [u8],
    /// The number of initial descriptors: they are `1..=descriptors`.
    pub descriptors: u32,
    /// Which of descriptors 1..=256 were taken already.
    taken: [u64; 4],
}

impl Startup {
    /// A start-up record (made by the runtime; public for tests).
    pub fn new(arguments: &'static [u8], descriptors: u32) -> Self {
        Startup {
            arguments,
            descriptors,
            taken: [0; 4],
        }
    }

    /// Initial descriptor `number`, if it is one (`1..=descriptors`).
    pub fn descriptor(&self, number: u32) -> Option<Descriptor> {
        (1..=self.descriptors)
            .contains(&number)
            .then_some(Descriptor(number))
    }

    /// Takes ownership of initial descriptor `number` (`1..=descriptors`,
    /// at most 256); `None` if it is not one or was taken already.
    pub fn take_descriptor(&mut self, number: u32) -> Option<OwnedDescriptor> {
        let descriptor = self.descriptor(number)?;
        let bit = usize::try_from(number - 1).ok()?;
        let word = self.taken.get_mut(bit / 64)?;
        let mask = 1u64 << (bit % 64);
        if *word & mask != 0 {
            return None;
        }
        *word |= mask;
        OwnedDescriptor::from_raw(descriptor)
    }
}

static NAME: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());

/// Records the program's name (done by [`crate::entry!`] before main).
#[doc(hidden)]
pub fn set_program_name(name: &'static &'static str) {
    NAME.store(core::ptr::from_ref(name).cast_mut(), Ordering::Release);
}

/// The program's name (its binary's name), for messages.
pub fn program_name() -> &'static str {
    let pointer = NAME.load(Ordering::Acquire);
    if pointer.is_null() {
        return "?";
    }
    // SAFETY: the only non-null values ever stored come from a
    // `&'static &'static str` (`set_program_name`), valid forever and never
    // written through.
    unsafe { *pointer }
}

#[cfg(target_os = "none")]
unsafe extern "Rust" {
    /// The program's main, defined by `entry!` in the program crate.
    safe fn __userlib_main(startup: Startup) -> i32;
}

/// The first Rust code of a process (called by `_start` with the
/// registers of `abi::process`): builds the [`Startup`], runs the program's
/// main and exits with its value.
#[cfg(target_os = "none")]
pub(crate) extern "C" fn start(arguments: *const u8, length: usize, descriptors: u64) -> ! {
    let arguments: &'static [u8] = if arguments.is_null() || length == 0 {
        &[]
    } else {
        // SAFETY: abi::process: the kernel copied `length` argument bytes
        // to `arguments`, at the top of the first thread's stack above its
        // initial stack pointer; the stack grows down from below them, so
        // nothing writes there while the process lives.
        unsafe { core::slice::from_raw_parts(arguments, length) }
    };
    let startup = Startup::new(arguments, u32::try_from(descriptors).unwrap_or(0));
    crate::capability::find(startup.descriptors);
    crate::stdio::init();
    let code = __userlib_main(startup);
    crate::stdio::close_all();
    crate::kernel::process_exit(code as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_descriptors_are_taken_once() {
        let mut startup = Startup::new(b"x", 2);
        assert_eq!(startup.descriptor(0), None);
        assert_eq!(startup.descriptor(3), None);
        assert_eq!(startup.descriptor(2), Some(Descriptor(2)));
        let first = startup.take_descriptor(1).map(OwnedDescriptor::into_raw);
        assert_eq!(first, Some(Descriptor(1)));
        assert!(startup.take_descriptor(1).is_none());
        assert!(startup.take_descriptor(3).is_none());
        let mut many = Startup::new(b"", 300);
        assert!(
            many.take_descriptor(256)
                .map(OwnedDescriptor::into_raw)
                .is_some()
        );
        assert!(many.take_descriptor(257).is_none());
    }

    #[test]
    fn the_program_name_defaults_to_a_question_mark() {
        // Tests share the static; only check it is a valid string.
        assert!(!program_name().is_empty());
        set_program_name(&"echo");
        assert_eq!(program_name(), "echo");
    }
}
