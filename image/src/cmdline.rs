//! The kernel command-line words that the host tools write and the kernel
//! reads. A command line is a list of words separated by ASCII whitespace; a
//! word is either present or not.

/// When present, the kernel reports its verdict through `isa-debug-exit`
/// (see `abi::debug_exit`) and QEMU exits, instead of idling after boot.
pub const QEMU_EXIT: &str = "qemu-exit";

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
    fn an_empty_word_is_never_present() {
        assert!(!has_word("a  b", ""));
    }
}
