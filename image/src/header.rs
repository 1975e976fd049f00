//! What the headers of this crate's two binary formats (the boot archive and
//! the compiled policy) share: each opens with eight magic bytes and a
//! version, so each refuses an input too short for its header, with the
//! wrong magic or of another version. The words of those refusals are
//! written here once, so the two formats say them alike.

use core::fmt;

/// The refusal of an input of `available` bytes, shorter than the `size`
/// bytes of a `header` (what the format calls its header).
pub(crate) fn write_too_short(
    f: &mut fmt::Formatter<'_>,
    header: &str,
    size: usize,
    available: usize,
) -> fmt::Result {
    write!(
        f,
        "too short: a {header} needs {size} bytes but only {available} are present"
    )
}

/// The refusal of an input that opens with `found` instead of `expected`.
pub(crate) fn write_bad_magic(
    f: &mut fmt::Formatter<'_>,
    expected: &[u8; 8],
    found: &[u8; 8],
) -> fmt::Result {
    write!(
        f,
        "bad magic (expected \"{}\", found \"{}\")",
        expected.escape_ascii(),
        found.escape_ascii()
    )
}

/// The refusal of a `version` (what the format calls it) `found` by a
/// reader that knows only `known`.
pub(crate) fn write_unsupported_version(
    f: &mut fmt::Formatter<'_>,
    version: &str,
    found: u32,
    known: u32,
) -> fmt::Result {
    write!(
        f,
        "unsupported {version} {found} (this reader knows version {known})"
    )
}
