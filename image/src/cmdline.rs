//! The kernel command-line words that the host tools write and the kernel
//! reads. A command line is a list of words separated by ASCII whitespace; a
//! word is either present or not.

/// When present, the kernel reports its verdict through `isa-debug-exit`
/// (see `abi::debug_exit`) and QEMU exits, instead of idling after boot.
pub const QEMU_EXIT: &str = "qemu-exit";

/// `init=NAME` names the boot-archive program the kernel starts first
/// (default [`DEFAULT_INIT`]); tests boot the same archive with their own runner.
pub const INIT_KEY: &str = "init";

/// The first program when the command line names none.
pub const DEFAULT_INIT: &str = "procman";

/// `selftest=NAME` runs one of the kernel's boot self-tests after `ready`
/// instead of starting user space (the boot tests use them).
pub const SELFTEST_KEY: &str = "selftest";

/// The self-test that overflows a kernel stack on purpose: it must end in
/// a reported double fault from the guard page, never in corruption.
pub const SELFTEST_KERNEL_STACK_OVERFLOW: &str = "kernel-stack-overflow";

/// The self-test that reads a user page by its user address from the
/// kernel: SMAP must stop it with a kernel-mode page fault.
pub const SELFTEST_KERNEL_READS_USER_MEMORY: &str = "kernel-reads-user-memory";

/// The self-test that calls into a user page from the kernel: SMEP must
/// stop it with a kernel-mode page fault.
pub const SELFTEST_KERNEL_EXECUTES_USER_MEMORY: &str = "kernel-executes-user-memory";

/// The value of the last `key=value` word of `cmdline`, if any.
pub fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .rev()
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Whether `word` is one of the whitespace-separated words of `cmdline`.
pub fn has_word(cmdline: &str, word: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .any(|candidate| candidate == word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_words_only() {
        assert!(has_word("qemu-exit", QEMU_EXIT));
        assert!(has_word("  verbose\tqemu-exit\n", QEMU_EXIT));
        assert!(!has_word("qemu-exit-later", QEMU_EXIT));
        assert!(!has_word("no-qemu-exit", QEMU_EXIT));
        assert!(!has_word("", QEMU_EXIT));
    }

    #[test]
    fn values_are_found_by_key_and_the_last_wins() {
        assert_eq!(value("qemu-exit init=ipc-test", INIT_KEY), Some("ipc-test"));
        assert_eq!(value("init=a init=b", INIT_KEY), Some("b"));
        assert_eq!(value("initial=x", INIT_KEY), None);
        assert_eq!(value("init=", INIT_KEY), Some(""));
        assert_eq!(value("", INIT_KEY), None);
    }

    #[test]
    fn an_empty_word_is_never_present() {
        assert!(!has_word("a  b", ""));
    }
}
