//! The boot archive format end to end: what the builder writes the reader
//! accepts, every broken rule is reported as its own error, and no input
//! whatsoever makes the reader panic.

use image::format::{
    ArchiveHeader, DIRECTORY_ENTRY_SIZE, DirectoryEntry, FILE_ALIGNMENT, HEADER_SIZE, MAGIC,
    NAME_CAPACITY, NameError, checksum,
};
use image::{ArchiveBuilder, ArchiveError, BootArchive, BuildError};
use proptest::prelude::*;
use zerocopy::FromBytes;

/// A valid archive of three files: a small one, an empty one and one that is
/// exactly a page long.
fn sample_archive() -> Vec<u8> {
    ArchiveBuilder::new()
        .add("system.toml", b"[system]\nname = \"hinge\"\n".as_slice())
        .and_then(|builder| builder.add("empty", Vec::new()))
        .and_then(|builder| builder.add("page", vec![0xa5; abi::PAGE_SIZE]))
        .expect("valid names")
        .build()
}

fn header_mut(archive: &mut [u8]) -> &mut ArchiveHeader {
    ArchiveHeader::mut_from_prefix(archive).expect("a header").0
}

fn entry_mut(archive: &mut [u8], index: usize) -> &mut DirectoryEntry {
    let start = HEADER_SIZE + index * DIRECTORY_ENTRY_SIZE;
    DirectoryEntry::mut_from_prefix(&mut archive[start..])
        .expect("an entry")
        .0
}

/// Recomputes the checksum after a deliberate change, so that the change
/// itself is what the reader reports.
fn reseal(archive: &mut [u8]) {
    let total = header_mut(archive).total_size.get() as usize;
    let sum = checksum(&archive[HEADER_SIZE..total]);
    header_mut(archive).checksum.set(sum);
}

fn parse_error(archive: &[u8]) -> ArchiveError {
    BootArchive::parse(archive).expect_err("the archive is broken")
}

#[test]
fn what_the_builder_writes_the_reader_reads_back() {
    let bytes = sample_archive();
    let archive = BootArchive::parse(&bytes).expect("valid");
    assert_eq!(archive.entry_count(), 3);
    assert_eq!(archive.total_size(), bytes.len() as u64);

    let entries: Vec<_> = archive.entries().collect();
    let names: Vec<_> = entries.iter().map(|entry| entry.name).collect();
    assert_eq!(names, ["system.toml", "empty", "page"]);
    assert_eq!(entries[0].data, b"[system]\nname = \"hinge\"\n");
    assert!(entries[1].data.is_empty());
    assert_eq!(entries[2].data, [0xa5; abi::PAGE_SIZE]);
    for entry in &entries {
        assert_eq!(
            entry.offset % FILE_ALIGNMENT,
            0,
            "{} is page-aligned",
            entry.name
        );
        assert!(entry.offset >= (HEADER_SIZE + 3 * DIRECTORY_ENTRY_SIZE) as u64);
    }
    // The last file ends the archive.
    assert_eq!(entries[2].offset + abi::PAGE_BYTES, archive.total_size());

    assert_eq!(
        archive.find("page"),
        Some([0xa5; abi::PAGE_SIZE].as_slice())
    );
    assert_eq!(archive.find("missing"), None);
    // `find` compares stored fields with the name's encoding: a prefix, a
    // longer name, one with a NUL after it and one that cannot be stored
    // match nothing.
    for near in ["pag", "pages", "page\0", "", &"p".repeat(NAME_CAPACITY + 1)] {
        assert_eq!(archive.find(near), None, "{near:?}");
    }
}

#[test]
fn identical_files_share_their_bytes() {
    let program = vec![0x5a; 3 * abi::PAGE_SIZE + 7];
    let bytes = ArchiveBuilder::new()
        .add("conformance", program.clone())
        .and_then(|builder| builder.add("other", b"x".as_slice()))
        .and_then(|builder| builder.add("conformance-portals", program.clone()))
        .expect("valid names")
        .build();
    let archive = BootArchive::parse(&bytes).expect("valid");
    let entries: Vec<_> = archive.entries().collect();
    assert_eq!(entries[2].offset, entries[0].offset);
    assert_eq!(
        archive.find("conformance-portals"),
        Some(program.as_slice())
    );
    assert_eq!(archive.find("conformance"), Some(program.as_slice()));
    // One copy: the archive ends with "other", its one byte.
    assert_eq!(archive.total_size(), entries[1].offset + 1);
}

#[test]
fn gaps_between_files_are_zero() {
    let bytes = sample_archive();
    let archive = BootArchive::parse(&bytes).expect("valid");
    let mut covered = vec![false; bytes.len()];
    covered[..HEADER_SIZE + 3 * DIRECTORY_ENTRY_SIZE].fill(true);
    for entry in archive.entries() {
        let start = entry.offset as usize;
        covered[start..start + entry.data.len()].fill(true);
    }
    for (offset, byte) in bytes.iter().enumerate() {
        assert!(
            covered[offset] || *byte == 0,
            "byte {offset} is in a gap and not zero"
        );
    }
}

#[test]
fn an_empty_archive_is_header_only() {
    let bytes = ArchiveBuilder::new().build();
    assert_eq!(bytes.len(), HEADER_SIZE);
    let archive = BootArchive::parse(&bytes).expect("valid");
    assert_eq!(archive.entry_count(), 0);
    assert_eq!(archive.entries().count(), 0);
}

#[test]
fn bytes_past_the_declared_size_are_ignored() {
    let mut bytes = sample_archive();
    let total = bytes.len();
    bytes.extend_from_slice(&[0xff; 100]);
    let archive = BootArchive::parse(&bytes).expect("valid");
    assert_eq!(archive.as_bytes().len(), total);
}

#[test]
fn the_builder_refuses_bad_and_duplicate_names() {
    let invalid = |name: &str| {
        ArchiveBuilder::new()
            .add(name, Vec::new())
            .expect_err("invalid")
    };
    assert_eq!(
        invalid(""),
        BuildError::InvalidName {
            name: String::new(),
            reason: NameError::Empty
        }
    );
    assert!(matches!(
        invalid("a\0b"),
        BuildError::InvalidName {
            reason: NameError::InteriorNul,
            ..
        }
    ));
    assert!(matches!(
        invalid(&"n".repeat(NAME_CAPACITY + 1)),
        BuildError::InvalidName {
            reason: NameError::TooLong { .. },
            ..
        }
    ));
    let duplicate = ArchiveBuilder::new()
        .add("same", b"1".as_slice())
        .and_then(|builder| builder.add("same", b"2".as_slice()))
        .expect_err("duplicate");
    assert_eq!(
        duplicate,
        BuildError::DuplicateName {
            name: "same".into()
        }
    );
    assert!(duplicate.to_string().contains("already"));
}

// One crafted input per error variant, each with its message.

#[test]
fn too_short_for_a_header() {
    let error = parse_error(&sample_archive()[..HEADER_SIZE - 1]);
    assert_eq!(
        error,
        ArchiveError::TooShortForHeader {
            available: HEADER_SIZE - 1
        }
    );
    assert!(error.to_string().starts_with("too short"), "{error}");
}

#[test]
fn bad_magic() {
    let mut bytes = sample_archive();
    bytes[0] = b'X';
    let error = parse_error(&bytes);
    assert_eq!(
        error,
        ArchiveError::BadMagic {
            found: *b"XINGEARC"
        }
    );
    assert_eq!(
        error.to_string(),
        "bad magic (expected \"HINGEARC\", found \"XINGEARC\")"
    );

    bytes[..8].copy_from_slice(&[0, 1, 2, 3, 0xff, b'"', b'a', b'b']);
    assert_eq!(
        parse_error(&bytes).to_string(),
        "bad magic (expected \"HINGEARC\", found \"\\x00\\x01\\x02\\x03\\xff\\\"ab\")"
    );
}

#[test]
fn unsupported_version() {
    // Version 1 (a CRC-32 checksum) is refused too: its sum would not match.
    for version in [1, 3] {
        let mut bytes = sample_archive();
        header_mut(&mut bytes).version.set(version);
        let error = parse_error(&bytes);
        assert_eq!(error, ArchiveError::UnsupportedVersion { found: version });
        assert!(
            error
                .to_string()
                .starts_with(&format!("unsupported version {version}")),
            "{error}"
        );
    }
}

#[test]
fn reserved_not_zero() {
    let mut bytes = sample_archive();
    header_mut(&mut bytes).reserved.set(1);
    let error = parse_error(&bytes);
    assert_eq!(error, ArchiveError::ReservedNotZero { found: 1 });
    assert!(error.to_string().starts_with("reserved"), "{error}");
}

#[test]
fn truncated() {
    let bytes = sample_archive();
    let half = &bytes[..bytes.len() / 2];
    let error = parse_error(half);
    assert_eq!(
        error,
        ArchiveError::Truncated {
            declared: bytes.len() as u64,
            available: half.len()
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "truncated: header declares {} bytes but only {} are present",
            bytes.len(),
            half.len()
        )
    );

    let mut huge = bytes.clone();
    header_mut(&mut huge).total_size.set(u64::MAX);
    assert!(matches!(
        parse_error(&huge),
        ArchiveError::Truncated {
            declared: u64::MAX,
            ..
        }
    ));
}

#[test]
fn directory_out_of_bounds() {
    let mut bytes = ArchiveBuilder::new().build();
    header_mut(&mut bytes).entry_count.set(1);
    let error = parse_error(&bytes);
    assert_eq!(
        error,
        ArchiveError::DirectoryOutOfBounds {
            entry_count: 1,
            directory_end: (HEADER_SIZE + DIRECTORY_ENTRY_SIZE) as u64,
            total_size: HEADER_SIZE as u64,
        }
    );
    assert!(
        error.to_string().starts_with("directory out of bounds"),
        "{error}"
    );

    // A total size smaller than the header itself is the same failure.
    let mut tiny = ArchiveBuilder::new().build();
    header_mut(&mut tiny).total_size.set(4);
    assert!(matches!(
        parse_error(&tiny),
        ArchiveError::DirectoryOutOfBounds { .. }
    ));
}

#[test]
fn checksum_mismatch() {
    let mut bytes = sample_archive();
    let stored = header_mut(&mut bytes).checksum.get();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let computed = checksum(&bytes[HEADER_SIZE..]);
    let error = parse_error(&bytes);
    assert_eq!(error, ArchiveError::ChecksumMismatch { stored, computed });
    assert!(
        error
            .to_string()
            .starts_with("checksum mismatch (header says 0x"),
        "{error}"
    );
}

#[test]
fn invalid_names() {
    let cases: [(&[u8], NameError); 3] = [
        (b"", NameError::Empty),
        (b"a\0b", NameError::InteriorNul),
        (&[0xc3, 0x28], NameError::NotUtf8),
    ];
    for (name, reason) in cases {
        let mut bytes = sample_archive();
        let field = &mut entry_mut(&mut bytes, 1).name;
        *field = [0; NAME_CAPACITY];
        field[..name.len()].copy_from_slice(name);
        reseal(&mut bytes);
        let error = parse_error(&bytes);
        assert_eq!(error, ArchiveError::InvalidName { index: 1, reason });
        assert!(
            error.to_string().starts_with("entry 1 has an invalid name"),
            "{error}"
        );
    }
}

#[test]
fn a_name_filling_the_whole_field_is_valid() {
    let name = "n".repeat(NAME_CAPACITY);
    let bytes = ArchiveBuilder::new()
        .add(&name, b"x".as_slice())
        .expect("fits")
        .build();
    let archive = BootArchive::parse(&bytes).expect("valid");
    assert_eq!(archive.find(&name), Some(b"x".as_slice()));
}

#[test]
fn misaligned_entry() {
    let mut bytes = sample_archive();
    let offset = entry_mut(&mut bytes, 0).offset.get() + 8;
    entry_mut(&mut bytes, 0).offset.set(offset);
    reseal(&mut bytes);
    let error = parse_error(&bytes);
    assert_eq!(error, ArchiveError::MisalignedEntry { index: 0, offset });
    assert!(
        error.to_string().contains("not a multiple of 4096"),
        "{error}"
    );
}

#[test]
fn entry_overlaps_directory() {
    let mut bytes = sample_archive();
    entry_mut(&mut bytes, 1).offset.set(0);
    reseal(&mut bytes);
    let error = parse_error(&bytes);
    assert_eq!(
        error,
        ArchiveError::EntryOverlapsDirectory {
            index: 1,
            offset: 0,
            directory_end: (HEADER_SIZE + 3 * DIRECTORY_ENTRY_SIZE) as u64,
        }
    );
    assert!(
        error
            .to_string()
            .starts_with("entry 1 overlaps the directory"),
        "{error}"
    );
}

#[test]
fn entry_out_of_bounds() {
    let total_size = sample_archive().len() as u64;
    for size in [4097, u64::MAX] {
        let mut bytes = sample_archive();
        entry_mut(&mut bytes, 2).size.set(size);
        let offset = entry_mut(&mut bytes, 2).offset.get();
        reseal(&mut bytes);
        let error = parse_error(&bytes);
        assert_eq!(
            error,
            ArchiveError::EntryOutOfBounds {
                index: 2,
                offset,
                size,
                total_size
            }
        );
        assert!(
            error.to_string().starts_with("entry 2 out of bounds"),
            "{error}"
        );
    }
}

#[test]
fn duplicate_name() {
    let mut bytes = sample_archive();
    let first_name = entry_mut(&mut bytes, 0).name;
    entry_mut(&mut bytes, 2).name = first_name;
    reseal(&mut bytes);
    let error = parse_error(&bytes);
    assert_eq!(
        error,
        ArchiveError::DuplicateName {
            first: 0,
            second: 2
        }
    );
    assert!(error.to_string().starts_with("duplicate name"), "{error}");
}

#[test]
fn the_header_starts_with_the_magic() {
    assert_eq!(&sample_archive()[..8], MAGIC.as_slice());
}

/// Files of arbitrary names (valid ones, made unique) and contents, some
/// of them copies of an earlier file's (which the builder shares).
fn arbitrary_files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::vec(
        (
            "[a-z0-9._-]{1,20}",
            proptest::collection::vec(any::<u8>(), 0..5000),
            proptest::option::weighted(0.3, any::<prop::sample::Index>()),
        ),
        0..6,
    )
    .prop_map(|files| {
        let mut made: Vec<(String, Vec<u8>)> = Vec::new();
        for (index, (name, data, copy_of)) in files.into_iter().enumerate() {
            let data = match copy_of {
                Some(earlier) if index > 0 => made[earlier.index(index)].1.clone(),
                _ => data,
            };
            made.push((format!("{index}-{name}"), data));
        }
        made
    })
}

fn build(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    files
        .iter()
        .try_fold(ArchiveBuilder::new(), |builder, (name, data)| {
            builder.add(name, data.clone())
        })
        .expect("unique valid names")
        .build()
}

proptest! {
    #[test]
    fn any_files_round_trip(files in arbitrary_files()) {
        let bytes = build(&files);
        let archive = BootArchive::parse(&bytes).expect("the builder writes valid archives");
        prop_assert_eq!(archive.entry_count() as usize, files.len());
        for ((name, data), entry) in files.iter().zip(archive.entries()) {
            prop_assert_eq!(entry.name, name.as_str());
            prop_assert_eq!(entry.data, data.as_slice());
            prop_assert_eq!(archive.find(name), Some(data.as_slice()));
        }
        // Each distinct non-empty content is written once, after at most
        // one alignment gap (an empty file is placed, and aligned, too).
        let mut distinct: Vec<&Vec<u8>> = Vec::new();
        for (_, data) in &files {
            if !data.is_empty() && !distinct.contains(&data) {
                distinct.push(data);
            }
        }
        let written: usize = distinct.iter().map(|data| data.len()).sum();
        let placed = distinct.len() + files.iter().filter(|(_, data)| data.is_empty()).count();
        prop_assert!(bytes.len() >= written);
        prop_assert!(
            bytes.len()
                <= HEADER_SIZE
                    + files.len() * DIRECTORY_ENTRY_SIZE
                    + placed * (FILE_ALIGNMENT as usize - 1)
                    + written
        );
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = BootArchive::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes_behind_a_valid_header(
        entry_count in 0u32..8,
        total_size in prop_oneof![0u64..2048, any::<u64>()],
        body in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        // A header that passes the first checks, so the directory and entry
        // checks see random data; sealed so the checksum passes too.
        let mut bytes = ArchiveBuilder::new().build();
        bytes.extend_from_slice(&body);
        header_mut(&mut bytes).entry_count.set(entry_count);
        header_mut(&mut bytes).total_size.set(total_size);
        if let Some(sealed) = usize::try_from(total_size).ok().and_then(|total| bytes.get(HEADER_SIZE..total)) {
            let sum = checksum(sealed);
            header_mut(&mut bytes).checksum.set(sum);
        }
        if let Ok(archive) = BootArchive::parse(&bytes) {
            for entry in archive.entries() {
                prop_assert_eq!(entry.offset % FILE_ALIGNMENT, 0);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_mutations_of_a_valid_archive(
        files in arbitrary_files(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        reseal_after in any::<bool>(),
    ) {
        let mut bytes = build(&files);
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if reseal_after {
            // With a fresh checksum the structural checks see the mutation.
            let total = header_mut(&mut bytes).total_size.get();
            if let Some(sealed) = usize::try_from(total).ok().and_then(|total| bytes.get(HEADER_SIZE..total)) {
                let sum = checksum(sealed);
                header_mut(&mut bytes).checksum.set(sum);
            }
        }
        if let Ok(archive) = BootArchive::parse(&bytes) {
            prop_assert!(archive.entries().count() <= archive.entry_count() as usize);
        }
    }

    #[test]
    fn every_truncation_of_a_valid_archive_is_refused(
        files in arbitrary_files(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = build(&files);
        let len = cut.index(bytes.len());
        prop_assert!(BootArchive::parse(&bytes[..len]).is_err());
    }
}
