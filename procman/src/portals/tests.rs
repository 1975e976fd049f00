//! The portal table's rules, one at a time, and a property test that
//! whatever happens, every descriptor procman records comes back to be
//! closed exactly once.

use super::*;
use abi::PAGE_BYTES;
use abi::kcall::protection::{EXECUTE, READ, WRITE};
use abi::portal::PortalSpec;
use proptest::prelude::*;
use zerocopy::FromBytes;

const A: u32 = 1;
const B: u32 = 2;

fn everything(_: &str) -> bool {
    true
}

fn under_shm(name: &str) -> bool {
    name.starts_with("/shm/")
}

fn caller(pid: u32, domain: usize, classes: PortalClass) -> Caller<'static> {
    Caller {
        pid,
        domain,
        classes,
        may_register: &under_shm,
    }
}

fn user(pid: u32) -> Caller<'static> {
    caller(
        pid,
        1,
        PortalClass::SHARE
            .with(PortalClass::ANON)
            .with(PortalClass::COW),
    )
}

fn privileged(pid: u32) -> Caller<'static> {
    Caller {
        pid,
        domain: 0,
        classes: PortalClass::ALL,
        may_register: &everything,
    }
}

/// The request for `spec`, split as procman's dispatch hands it over.
fn plan(table: &PortalTable, who: &Caller<'_>, spec: PortalSpec<'_>) -> Result<Plan, ProcmanError> {
    let mut out = [0u8; 1024];
    let length = PortalRequest::encode(&spec, &mut out).expect("fits");
    let (header, bytes) = PortalRequest::read_from_prefix(&out[..length]).expect("header");
    table.plan(who, &header, bytes)
}

fn share(name: &str, length: u64, share_type: u32) -> PortalSpec<'_> {
    PortalSpec::new_share(name.as_bytes(), length, share_type)
}

fn capture(name: &str, prot: u32) -> PortalSpec<'_> {
    PortalSpec::capture(name.as_bytes(), prot)
}

/// Plans and records a creation as the server does, with `object` (and
/// `object + 1` as a share-point's lock event).
fn create(table: &mut PortalTable, who: &Caller<'_>, spec: PortalSpec<'_>, object: u32) {
    match plan(table, who, spec) {
        Ok(Plan::Create {
            name,
            memory,
            mut entry,
            header,
            ..
        }) => {
            if memory != Memory::Unsized {
                entry.object = Some(object);
            }
            if header.is_some() {
                entry.lock_event = Some(object + 1);
            }
            table.insert(name, entry);
        }
        other => panic!("expected a creation, got {other:?}"),
    }
}

#[test]
fn private_anonymous_and_direct_memory() {
    let table = PortalTable::new();
    let anon = PortalSpec {
        classes: PortalClass::ANON,
        prot: READ | WRITE,
        length: 5000,
        ..PortalSpec::default()
    };
    assert_eq!(
        plan(&table, &user(A), anon),
        Ok(Plan::Private {
            memory: Memory::Anonymous { pages: 2 },
            rights: Rights(
                Rights::MAP_READ.0 | Rights::MAP_WRITE.0 | Rights::TRANSFER.0 | Rights::DUPLICATE.0
            ),
        })
    );
    let frames = [0xe0000, 0xe1000];
    let direct = PortalSpec {
        classes: PortalClass::DIRECT,
        prot: READ,
        frames: &frames,
        ..PortalSpec::default()
    };
    assert_eq!(
        plan(&table, &user(A), direct),
        Err(ProcmanError::PortalClassDenied),
        "DIRECT is privileged"
    );
    assert!(matches!(
        plan(&table, &privileged(A), direct),
        Ok(Plan::Private {
            memory: Memory::Direct {
                physical: 0xe0000,
                length: 0x2000
            },
            ..
        })
    ));
    let gap = [0xe0000, 0xe2000];
    assert_eq!(
        plan(
            &table,
            &privileged(A),
            PortalSpec {
                frames: &gap,
                ..direct
            }
        ),
        Err(ProcmanError::PortalBadMorphology)
    );
    let unaligned = [0xe0010];
    assert_eq!(
        plan(
            &table,
            &privileged(A),
            PortalSpec {
                frames: &unaligned,
                ..direct
            }
        ),
        Err(ProcmanError::PortalBadMorphology)
    );
    assert_eq!(
        plan(
            &table,
            &privileged(A),
            PortalSpec {
                prot: READ | EXECUTE,
                ..direct
            }
        ),
        Err(ProcmanError::PortalBadProt),
        "device memory is never executed"
    );
    assert_eq!(
        plan(&table, &user(A), PortalSpec { length: 0, ..anon }),
        Err(ProcmanError::PortalBadLength)
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                length: MAX_PORTAL_BYTES + 1,
                ..anon
            }
        ),
        Err(ProcmanError::PortalBadLength)
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                morphology_length: PAGE_BYTES,
                ..anon
            }
        ),
        Err(ProcmanError::PortalBadMorphology)
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                address: 0x1001,
                ..anon
            }
        ),
        Err(ProcmanError::PortalBadMorphology)
    );
}

#[test]
fn classes_and_combinations() {
    let table = PortalTable::new();
    for (classes, expected) in [
        (PortalClass(0), ProcmanError::PortalBadClass),
        (PortalClass(1 << 5), ProcmanError::PortalBadClass),
        // SPECIAL needs a chain (its pager).
        (PortalClass::SPECIAL, ProcmanError::BadRequest),
        (
            PortalClass::ANON.with(PortalClass::DIRECT),
            ProcmanError::PortalBadClass,
        ),
        (
            PortalClass::ANON.with(PortalClass::COW),
            ProcmanError::PortalBadClass,
        ),
    ] {
        let spec = PortalSpec {
            classes,
            prot: READ,
            length: PAGE_BYTES,
            ..PortalSpec::default()
        };
        assert_eq!(
            plan(&table, &privileged(A), spec),
            Err(expected),
            "{classes:?}"
        );
    }
    let special = PortalSpec {
        classes: PortalClass::SPECIAL,
        prot: READ,
        length: PAGE_BYTES,
        chain_name: b"/srv/pager",
        ..PortalSpec::default()
    };
    assert_eq!(
        plan(&table, &user(A), special),
        Err(ProcmanError::PortalClassDenied),
        "the policy comes before the pager"
    );
    let chained_anon = PortalSpec {
        classes: PortalClass::ANON,
        prot: READ,
        length: PAGE_BYTES,
        chain_name: b"/srv/pager",
        ..PortalSpec::default()
    };
    assert_eq!(
        plan(&table, &user(A), chained_anon),
        Err(ProcmanError::BadRequest)
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                prot: WRITE,
                ..chained_anon
            }
        ),
        Err(ProcmanError::BadRequest),
        "the shape is checked first"
    );
    let anon = PortalSpec {
        chain_name: b"",
        ..chained_anon
    };
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                prot: WRITE,
                ..anon
            }
        ),
        Err(ProcmanError::PortalBadProt)
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                prot: READ | 8,
                ..anon
            }
        ),
        Err(ProcmanError::PortalBadProt)
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                identifier: b"/shm/x",
                ..anon
            }
        ),
        Err(ProcmanError::BadRequest),
        "private memory has no identifier"
    );
    assert_eq!(
        plan(
            &table,
            &user(A),
            PortalSpec {
                share_type: 8,
                ..share("/shm/x", PAGE_BYTES, 0)
            }
        ),
        Err(ProcmanError::BadRequest)
    );
}

#[test]
fn names_are_checked_and_a_creator_decides_who_captures() {
    let mut table = PortalTable::new();
    assert_eq!(
        plan(&table, &user(A), share("shm", PAGE_BYTES, 0)),
        Err(ProcmanError::BadName)
    );
    assert_eq!(
        plan(&table, &user(A), share("/dev/x", PAGE_BYTES, 0)),
        Err(ProcmanError::NameDenied)
    );
    create(
        &mut table,
        &user(A),
        share("/shm/ro", PAGE_BYTES, OTHERS_READ_ONLY),
        10,
    );
    create(
        &mut table,
        &user(A),
        share("/shm/mine", PAGE_BYTES, DOMAIN_ONLY),
        11,
    );
    assert_eq!(
        plan(&table, &user(A), share("/shm/ro", PAGE_BYTES, 0)),
        Err(ProcmanError::NameExists)
    );
    assert_eq!(
        plan(&table, &user(B), capture("/shm/none", READ)),
        Err(ProcmanError::NoSuchName)
    );
    assert_eq!(
        plan(&table, &user(B), capture("/shm/ro", READ | WRITE)),
        Err(ProcmanError::PortalProtDenied)
    );
    assert_eq!(
        plan(&table, &user(B), capture("/shm/ro", READ)),
        Ok(Plan::Capture {
            name: "/shm/ro".into(),
            rights: rights_for(READ),
            lock: false
        })
    );
    assert_eq!(
        plan(&table, &user(A), capture("/shm/ro", READ | WRITE)).map(|_| ()),
        Ok(()),
        "the creator itself writes"
    );
    assert_eq!(
        plan(&table, &user(A), capture("/shm/ro", READ | WRITE | EXECUTE)),
        Err(ProcmanError::PortalProtDenied),
        "never wider than the creator's"
    );
    // DOMAIN_ONLY: the creator's domain (1) only.
    assert!(plan(&table, &user(B), capture("/shm/mine", READ)).is_ok());
    let other_domain = caller(B, 2, PortalClass::SHARE);
    assert_eq!(
        plan(&table, &other_domain, capture("/shm/mine", READ)),
        Err(ProcmanError::PortalCaptureDenied)
    );
    assert_eq!(
        plan(
            &table,
            &caller(B, 1, PortalClass::ANON),
            capture("/shm/ro", READ)
        ),
        Err(ProcmanError::PortalClassDenied)
    );
    assert_eq!(
        plan(
            &table,
            &user(B),
            PortalSpec {
                length: PAGE_BYTES,
                ..capture("/shm/ro", READ)
            }
        ),
        Err(ProcmanError::PortalBadLength)
    );
}

#[test]
fn share_points_carry_a_header_and_a_lock() {
    let mut table = PortalTable::new();
    let Ok(Plan::Create { header, memory, .. }) =
        plan(&table, &user(A), share("/shm/sp", PAGE_BYTES, SHARE_POINT))
    else {
        panic!("a share-point")
    };
    // 4096 data bytes after a 32-byte header need two pages.
    assert_eq!(memory, Memory::Anonymous { pages: 2 });
    assert_eq!(
        header,
        Some(SharePointHeader {
            lock: 0,
            prot: READ | WRITE,
            length: PAGE_BYTES,
            morphology_length: 8192,
            frame_count: 0,
            sequence: 0
        })
    );
    assert_eq!(
        plan(&table, &user(A), share("/shm/sp", 0, SHARE_POINT)),
        Err(ProcmanError::PortalBadLength),
        "a share-point has its size from the start"
    );
    create(
        &mut table,
        &user(A),
        share("/shm/sp", PAGE_BYTES, SHARE_POINT),
        20,
    );
    assert_eq!(table.descriptors(), 2);
    let Ok(Plan::Capture { lock, .. }) = plan(&table, &user(B), capture("/shm/sp", READ | WRITE))
    else {
        panic!("a capture")
    };
    assert!(lock, "a writer gets the lock event");
    let Ok(Plan::Capture { lock, .. }) = plan(&table, &user(B), capture("/shm/sp", READ)) else {
        panic!("a capture")
    };
    assert!(!lock, "a read-only attacher does not");
    // A DIRECT share-point: the header is in the range, the data after it.
    let frames = [0x10_0000];
    let spec = PortalSpec {
        classes: PortalClass::SHARE.with(PortalClass::DIRECT),
        frames: &frames,
        length: 0,
        ..share("/dev/sp", 0, SHARE_POINT)
    };
    let Ok(Plan::Create { header, .. }) = plan(&table, &privileged(A), spec) else {
        panic!("a direct share-point")
    };
    assert_eq!(
        header.map(|h| (h.length, h.frame_count)),
        Some((PAGE_BYTES - 48, 1))
    );
    assert_eq!(
        plan(
            &table,
            &privileged(A),
            PortalSpec {
                length: PAGE_BYTES,
                ..spec
            }
        ),
        Err(ProcmanError::PortalBadLength)
    );
}

#[test]
fn unsized_portals_are_sized_once_by_their_creator() {
    let mut table = PortalTable::new();
    create(&mut table, &user(A), share("/shm/s", 0, 0), 30);
    assert_eq!(table.descriptors(), 0);
    let cow = PortalSpec {
        classes: PortalClass::COW,
        prot: READ | WRITE,
        identifier: b"/shm/s",
        ..PortalSpec::default()
    };
    assert_eq!(
        plan(&table, &user(B), cow),
        Err(ProcmanError::PortalUnsized)
    );
    assert_eq!(
        table.plan_size(B, "/shm/s", PAGE_BYTES),
        Err(ProcmanError::NotNameOwner)
    );
    assert_eq!(
        table.plan_size(A, "/shm/s", 0),
        Err(ProcmanError::PortalBadLength)
    );
    assert_eq!(
        table.plan_size(A, "/shm/t", 1),
        Err(ProcmanError::NoSuchName)
    );
    assert_eq!(table.plan_size(A, "/shm/s", 4097), Ok(2));
    table.sized("/shm/s", 31, 2);
    assert_eq!(
        table.plan_size(A, "/shm/s", PAGE_BYTES),
        Err(ProcmanError::PortalSized)
    );
    assert_eq!(
        plan(&table, &user(B), cow),
        Ok(Plan::Cow {
            name: "/shm/s".into(),
            length: 8192,
            rights: rights_for(READ | WRITE)
        })
    );
}

#[test]
fn releases_unlinks_ends_and_quotas() {
    let mut table = PortalTable::new();
    for i in 0..MAX_PORTALS_PER_PROCESS as u32 {
        create(
            &mut table,
            &user(A),
            share(&format!("/shm/{i}"), PAGE_BYTES, 0),
            100 + i,
        );
    }
    assert_eq!(
        plan(&table, &user(A), share("/shm/one-more", PAGE_BYTES, 0)),
        Err(ProcmanError::TooManyPortals)
    );
    table.record_capture("/shm/0", B);
    table.record_capture("/shm/0", B);
    assert_eq!(table.captures(), MAX_PORTALS_PER_PROCESS + 1);
    assert_eq!(
        table.release(B, "/shm/1"),
        Err(ProcmanError::PortalNotCaptured)
    );
    assert_eq!(table.release(B, "/shm/0"), Ok(()));
    assert_eq!(
        table.release(B, "/shm/0"),
        Err(ProcmanError::PortalNotCaptured)
    );
    assert_eq!(table.unlink(B, "/shm/0"), Err(ProcmanError::NotNameOwner));
    assert_eq!(
        table.unlink(A, "/shm/0"),
        Ok(Released {
            descriptors: vec![100]
        })
    );
    assert_eq!(table.unlink(A, "/shm/0"), Err(ProcmanError::NoSuchName));
    table.record_capture("/shm/1", B);
    // B's end drops its captures only; A's end drops its names.
    assert_eq!(table.exited(B), Released::default());
    assert_eq!(table.captured_by(B), 0);
    let gone = table.exited(A);
    assert_eq!(gone.descriptors.len(), MAX_PORTALS_PER_PROCESS - 1);
    assert_eq!(
        (table.portals(), table.captures(), table.descriptors()),
        (0, 0, 0)
    );

    // Captures are bounded too (counted once per portal).
    let mut table = PortalTable::new();
    for i in 0..MAX_CAPTURES_PER_PROCESS as u32 {
        let creator = 100 + i / 16;
        create(
            &mut table,
            &user(creator),
            share(&format!("/shm/{i}"), PAGE_BYTES, 0),
            1000 + i,
        );
        table.record_capture(&format!("/shm/{i}"), B);
    }
    create(
        &mut table,
        &user(99),
        share("/shm/last", PAGE_BYTES, 0),
        999,
    );
    assert_eq!(
        plan(&table, &user(B), capture("/shm/last", READ)),
        Err(ProcmanError::TooManyCaptures)
    );
    assert!(
        plan(&table, &user(B), capture("/shm/0", READ)).is_ok(),
        "already captured"
    );
    assert_eq!(
        plan(&table, &user(B), share("/shm/new", PAGE_BYTES, 0)),
        Err(ProcmanError::TooManyCaptures),
        "a creation is a capture"
    );
}

#[test]
fn malformed_parts_are_bad_requests() {
    let table = PortalTable::new();
    let mut out = [0u8; 256];
    let spec = capture("/shm/x", READ);
    let length = PortalRequest::encode(&spec, &mut out).expect("fits");
    let (mut header, bytes) = PortalRequest::read_from_prefix(&out[..length]).expect("header");
    header.share.identifier_length = 100;
    assert_eq!(
        table.plan(&user(A), &header, bytes),
        Err(ProcmanError::BadRequest)
    );
    header.share.identifier_length = 6;
    header.share.identifier_offset = 4;
    assert_eq!(
        table.plan(&user(A), &header, bytes),
        Err(ProcmanError::BadRequest)
    );
    header.share.identifier_offset = 72;
    header.share.create = 2;
    assert_eq!(
        table.plan(&user(A), &header, bytes),
        Err(ProcmanError::BadRequest)
    );
    header.share.create = 0;
    header.morphology.frame_offset = 72;
    header.morphology.frame_count = MAX_FRAMES + 1;
    assert_eq!(
        table.plan(&user(A), &header, bytes),
        Err(ProcmanError::PortalBadMorphology)
    );
    header.morphology.frame_count = u32::MAX;
    assert_eq!(
        table.plan(&user(A), &header, bytes),
        Err(ProcmanError::PortalBadMorphology)
    );
}

proptest! {
    /// Creations, captures, releases, unlinks and ends in any order: every
    /// descriptor recorded is handed back to be closed exactly once, the
    /// bounds hold, and once every process ended the table is empty.
    #[test]
    fn the_table_gives_back_every_descriptor_once(
        ops in prop::collection::vec((0u8..5, 1u32..5, 0usize..6), 0..200)
    ) {
        let mut table = PortalTable::new();
        let mut recorded: BTreeSet<u32> = BTreeSet::new();
        let mut closed: Vec<u32> = Vec::new();
        let mut next = 1;
        for (op, pid, n) in ops {
            let name = format!("/shm/{n}");
            match op {
                0 => {
                    let spec = share(&name, PAGE_BYTES * (n as u64), if n.is_multiple_of(2) { SHARE_POINT } else { 0 });
                    if let Ok(Plan::Create { name, memory, header, mut entry, .. }) =
                        plan(&table, &user(pid), spec)
                    {
                        if memory != Memory::Unsized {
                            entry.object = Some(next);
                            recorded.insert(next);
                            next += 1;
                        }
                        if header.is_some() {
                            entry.lock_event = Some(next);
                            recorded.insert(next);
                            next += 1;
                        }
                        table.insert(name, entry);
                    }
                }
                1 => {
                    if let Ok(Plan::Capture { name, .. }) = plan(&table, &user(pid), capture(&name, READ)) {
                        table.record_capture(&name, pid);
                    }
                }
                2 => { let _ = table.release(pid, &name); }
                3 => {
                    if let Ok(released) = table.unlink(pid, &name) {
                        closed.extend(released.descriptors);
                    }
                }
                _ => closed.extend(table.exited(pid).descriptors),
            }
            prop_assert!(table.captured_by(pid) <= MAX_CAPTURES_PER_PROCESS);
            prop_assert!(table.created_by(pid) <= MAX_PORTALS_PER_PROCESS);
            prop_assert_eq!(table.descriptors() + closed.len(), recorded.len());
        }
        for pid in 1..5 {
            closed.extend(table.exited(pid).descriptors);
        }
        prop_assert_eq!((table.portals(), table.captures(), table.descriptors()), (0, 0, 0));
        let unique: BTreeSet<u32> = closed.iter().copied().collect();
        prop_assert_eq!(unique.len(), closed.len(), "closed once each");
        prop_assert_eq!(unique, recorded);
    }
}

#[test]
fn special_is_a_private_object_of_the_chains_first_server() {
    let table = PortalTable::new();
    let special = PortalSpec {
        classes: PortalClass::SPECIAL,
        prot: READ | WRITE,
        length: 4097,
        chain_name: b"/srv/pager",
        chain_message: b"file 7",
        ..PortalSpec::default()
    };
    assert_eq!(
        plan(&table, &privileged(A), special),
        Ok(Plan::Special {
            pager: String::from("/srv/pager"),
            pages: 2,
            cookie: u64::from_le_bytes(*b"file 7\0\0"),
            rights: rights_for(READ | WRITE),
        })
    );
    for (spec, expected) in [
        (
            PortalSpec {
                classes: PortalClass::SPECIAL.with(PortalClass::SHARE),
                identifier: b"/srv/x",
                create: true,
                ..special
            },
            ProcmanError::PortalBadClass,
        ),
        (
            PortalSpec {
                create: true,
                ..special
            },
            ProcmanError::BadRequest,
        ),
        (
            PortalSpec {
                identifier: b"/srv/x",
                ..special
            },
            ProcmanError::BadRequest,
        ),
        (
            PortalSpec {
                chain_message: b"nine byte",
                ..special
            },
            ProcmanError::BadRequest,
        ),
        (
            PortalSpec {
                chain_name: b"",
                ..special
            },
            ProcmanError::BadRequest,
        ),
        (
            PortalSpec {
                chain_name: b"srv/relative",
                ..special
            },
            ProcmanError::BadName,
        ),
        (
            PortalSpec {
                length: 0,
                ..special
            },
            ProcmanError::PortalBadLength,
        ),
        (
            PortalSpec {
                prot: WRITE,
                ..special
            },
            ProcmanError::PortalBadProt,
        ),
        (
            PortalSpec {
                address: 0x1001,
                ..special
            },
            ProcmanError::PortalBadMorphology,
        ),
    ] {
        assert_eq!(
            plan(&table, &privileged(A), spec),
            Err(expected),
            "{spec:?}"
        );
    }
    // Nothing is recorded.
    assert_eq!(table.portals(), 0);
}
