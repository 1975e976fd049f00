//! pager-test: pagers end to end (ABI.md §6.4), booted as the first
//! process (`init=pager-test`). Two pagers, each this program started
//! again, serve one special object as a chain of servers: the first
//! (argument `pager-a`, `userlib::pager`) supplies the even pages itself
//! (DATA, a computed pattern), FORWARDs the odd ones to the second and
//! refuses the last page with an error reply; the second (`pager-b`)
//! supplies what reaches it as FRAMEs of its own memory object, written
//! with the pattern first. This process maps the object and reads every
//! page from two threads at once, checks each page's pattern and who
//! supplied it, reads them again (resident: no pager is asked), then starts
//! a victim (`victim`) that reads the refused page and must end, and
//! checks that once the object is unmapped and closed the kernel's
//! objects, descriptors and free frames are back where they were.
//!
//! It must never touch a page of the object itself before the check that
//! says which pager should have supplied it, and never wait without a way
//! out: every wait is on a thread or process that either finishes or ends.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use abi::kcall::{PageRequest, protection};
use abi::{Descriptor, DescriptorSlot, Error, PAGE_BYTES, Rights};
use tally::{Lines, Tally};
use userlib::kernel::{self, DoorKind};
use userlib::pager::{Pager, PagerServer, Supply};
use userlib::raw::RawPages;
use userlib::{Event, Startup, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

const PROGRAM: &str = "pager-test";
const PAGES: u64 = 8;
/// The page the first pager refuses.
const REFUSED: u64 = PAGES - 1;
/// The special object's cookie.
const COOKIE: u64 = 0x5157;
/// Where the test and the victim map the object.
const MAP_AT: u64 = 0x0000_2200_0000_0000;
/// Where the second pager maps its own memory object.
const OWN_AT: u64 = 0x0000_2300_0000_0000;
/// Bytes of each page the pattern covers.
const PATTERN: usize = 256;

/// Byte `index` of page `page` as pager `by` (0: the first, 1: the second)
/// supplies it.
fn pattern(by: u8, page: u64, index: usize) -> u8 {
    (page as u8)
        .wrapping_mul(29)
        .wrapping_add(index as u8)
        .wrapping_add(by.wrapping_mul(0x80))
        ^ (COOKIE as u8)
}

fn run(mut startup: Startup) -> i32 {
    match startup.arguments {
        b"pager-a" => first_pager(&mut startup),
        b"pager-b" => second_pager(&mut startup),
        b"victim" => victim(&mut startup),
        _ => test(),
    }
}

/// The first pager: even pages itself, odd ones on to the second, the
/// last refused. Descriptor 1: its door's owner reference; 2: the second
/// pager's door.
struct First {
    next: Descriptor,
    page: [u8; PATTERN],
}

impl Pager for First {
    fn page(&mut self, request: &PageRequest) -> Supply<'_> {
        let page = request.offset / PAGE_BYTES;
        if request.cookie != COOKIE || page == REFUSED {
            return Supply::Fail(Error::InvalidArgument as u32);
        }
        if page % 2 == 1 {
            return Supply::Forward(self.next);
        }
        for (index, byte) in self.page.iter_mut().enumerate() {
            *byte = pattern(0, page, index);
        }
        Supply::Data(&self.page)
    }
}

fn first_pager(startup: &mut Startup) -> i32 {
    let (Some(door), Some(next)) = (startup.take_descriptor(1), startup.take_descriptor(2)) else {
        println!("{PROGRAM}: pager-a started without its doors");
        return 1;
    };
    let mut pager = PagerServer(First {
        next: next.descriptor(),
        page: [0; PATTERN],
    });
    let error = userlib::serve(&door, &mut pager);
    println!("{PROGRAM}: pager-a's door failed: {error}");
    1
}

/// The second pager: each page written into its own memory object, then
/// supplied as a FRAME of it.
struct Second {
    object: Descriptor,
    pages: RawPages,
}

impl Pager for Second {
    fn page(&mut self, request: &PageRequest) -> Supply<'_> {
        let page = request.offset / PAGE_BYTES;
        if request.hops != 1 || page >= PAGES {
            return Supply::Fail(Error::InvalidArgument as u32);
        }
        let mut bytes = [0u8; PATTERN];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = pattern(1, page, index);
        }
        // A write to a page shared with the special object copies it first.
        self.pages.write(OWN_AT + page * PAGE_BYTES, &bytes);
        Supply::Frame {
            object: self.object,
            offset: page * PAGE_BYTES,
        }
    }
}

fn second_pager(startup: &mut Startup) -> i32 {
    let Some(door) = startup.take_descriptor(1) else {
        println!("{PROGRAM}: pager-b started without its door");
        return 1;
    };
    let made = kernel::memory_create(PAGES as u32).and_then(|object| {
        let pages = RawPages::map_object(
            object.descriptor(),
            OWN_AT,
            0,
            PAGES * PAGE_BYTES,
            protection::READ | protection::WRITE,
        )?;
        Ok((object, pages))
    });
    let (object, pages) = match made {
        Ok(made) => made,
        Err(error) => {
            println!("{PROGRAM}: pager-b's memory: {error}");
            return 1;
        }
    };
    let mut pager = PagerServer(Second {
        object: object.descriptor(),
        pages,
    });
    let error = userlib::serve(&door, &mut pager);
    println!("{PROGRAM}: pager-b's door failed: {error}");
    1
}

/// Maps the object (descriptor 1) and reads the refused page: its pager's
/// error reply ends this process.
fn victim(startup: &mut Startup) -> i32 {
    let Some(object) = startup.take_descriptor(1) else {
        return 1;
    };
    let Ok(pages) = RawPages::map_object(
        object.descriptor(),
        MAP_AT,
        0,
        PAGES * PAGE_BYTES,
        protection::READ,
    ) else {
        return 1;
    };
    let mut byte = [0u8];
    pages.read(MAP_AT + REFUSED * PAGE_BYTES, &mut byte);
    println!("{PROGRAM}: the victim read the refused page");
    0
}

/// Reads page `page` of the mapping and compares it with who should have
/// supplied it.
fn check_page(pages: &RawPages, page: u64) -> Result<(), String> {
    let mut bytes = [0u8; PATTERN + 1];
    if !pages.read(MAP_AT + page * PAGE_BYTES, &mut bytes) {
        return Err(alloc::format!("page {page} could not be read"));
    }
    let by = (page % 2) as u8;
    let intact = bytes[..PATTERN]
        .iter()
        .enumerate()
        .all(|(index, byte)| *byte == pattern(by, page, index));
    let zero_after = by == 1 || bytes[PATTERN] == 0;
    if intact && zero_after {
        Ok(())
    } else {
        Err(alloc::format!(
            "page {page} reads {:?}..., not pager {}'s pattern",
            &bytes[..8],
            by
        ))
    }
}

fn test() -> i32 {
    println!("{PROGRAM}: two pagers in a chain, one special object");
    let mut tally = Tally::new(PROGRAM, Lines::Prefixed);
    if let Err(why) = test_with(&mut tally) {
        tally.check("setup", Err(why));
    }
    tally.exit()
}

fn setup<T>(what: &str, result: Result<T, Error>) -> Result<T, String> {
    result.map_err(|error| alloc::format!("{what}: {error}"))
}

/// Every page but the refused one, read by two threads at once.
static SECOND_DONE: AtomicBool = AtomicBool::new(false);

fn test_with(tally: &mut Tally) -> Result<(), String> {
    let first = setup("DOOR_CREATE", kernel::door_create(DoorKind::User, 0))?;
    let second = setup("DOOR_CREATE", kernel::door_create(DoorKind::User, 0))?;
    let owner = |door: &kernel::Door| {
        door.owner
            .info()
            .map(|info| DescriptorSlot::moving(door.owner.descriptor(), info.rights))
    };
    let first_owner = setup("DESCRIPTOR_INFO", owner(&first))?;
    let second_owner = setup("DESCRIPTOR_INFO", owner(&second))?;
    let forward = DescriptorSlot::copy(second.client.descriptor(), Rights::DOOR_CLIENT);
    let _pager_a = setup(
        "SPAWN pager-a",
        kernel::spawn(PROGRAM, b"pager-a", &[first_owner, forward]),
    )?;
    let _pager_b = setup(
        "SPAWN pager-b",
        kernel::spawn(PROGRAM, b"pager-b", &[second_owner]),
    )?;
    // Both owner references moved to the pagers.
    core::mem::forget(first.owner);
    core::mem::forget(second.owner);

    // Once each pager answers a call (a pager refuses any with
    // INVALID_FUNCTION), it has made all it keeps.
    for door in [&first.client, &second.client] {
        let mut buffer = [0u8; 64];
        let mut message = userlib::Message::over(&mut buffer[..]);
        let user = abi::function::Function(abi::function::USER_BASE);
        match userlib::call(door.descriptor(), user, &mut message) {
            Err(userlib::CallError::Server(errno)) if errno == Error::InvalidFunction as u32 => {}
            other => return Err(alloc::format!("a pager answered a call with {other:?}")),
        }
    }
    let before = setup("COUNTERS", kernel::counters())?;
    let object = setup(
        "PAGER_CREATE",
        kernel::pager_create(first.client.descriptor(), PAGES as u32, COOKIE),
    )?;
    let pages = setup(
        "MEMORY_MAP",
        RawPages::map_object(
            object.descriptor(),
            MAP_AT,
            0,
            PAGES * PAGE_BYTES,
            protection::READ,
        ),
    )?;

    // A second thread reads the pages from the top down while this one
    // reads them from the bottom up: some faults meet a request in flight.
    let done = setup("EVENT_CREATE", Event::create())?;
    let signal = Event::from_descriptor(setup(
        "DUPLICATE",
        kernel::duplicate(done.descriptor().descriptor(), Rights::EVENT),
    )?);
    let reader = RawPages::claim(MAP_AT, PAGES * PAGE_BYTES)
        .map_err(|_| String::from("RawPages::claim failed"))?;
    // This thread and the reader on one CPU (the reader inherits it): with
    // several, the reader could end on another CPU between the two counts
    // below, its stack freed inside the window they measure.
    setup("THREAD_AFFINITY", kernel::set_affinity(1))?;
    let thread = userlib::spawn_thread(
        move || {
            let ok = (0..REFUSED)
                .rev()
                .all(|page| check_page(&reader, page).is_ok());
            SECOND_DONE.store(ok, Ordering::SeqCst);
            let _ = signal.signal();
        },
        16 * 1024,
    );
    setup("spawn_thread", thread)?;
    for page in 0..REFUSED {
        tally.check(
            &alloc::format!("page {page} supplied by pager {}", page % 2),
            check_page(&pages, page),
        );
    }
    setup("EVENT_WAIT", done.wait().map(|_| ()))?;
    tally.check(
        "the second thread read the same pages",
        if SECOND_DONE.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(String::from("its pages differ"))
        },
    );
    let after_supply = setup("COUNTERS", kernel::counters())?;
    for page in 0..REFUSED {
        let _ = check_page(&pages, page);
    }
    let again = setup("COUNTERS", kernel::counters())?;
    setup("THREAD_AFFINITY", kernel::set_affinity(u64::MAX))?;
    tally.check(
        "resident pages are read again without a pager",
        if (again.objects, again.free_frames) == (after_supply.objects, after_supply.free_frames) {
            Ok(())
        } else {
            Err(alloc::format!("{after_supply:?} -> {again:?}"))
        },
    );

    // The victim reads the refused page: pager-a's error reply ends it.
    // This process's call on a door the victim owns fails once it is gone.
    let watch = setup("DOOR_CREATE", kernel::door_create(DoorKind::User, 0))?;
    let watch_owner = setup("DESCRIPTOR_INFO", owner(&watch))?;
    let slots = [
        DescriptorSlot::copy(object.descriptor(), Rights::MEMORY),
        watch_owner,
    ];
    let victim = setup("SPAWN victim", kernel::spawn(PROGRAM, b"victim", &slots))?;
    core::mem::forget(watch.owner);
    let mut buffer = [0u8; 64];
    let mut message = userlib::Message::over(&mut buffer[..]);
    let ended = userlib::call(
        watch.client.descriptor(),
        abi::function::Function(abi::function::USER_BASE),
        &mut message,
    );
    tally.check(
        "a read of the refused page ends the reader",
        match ended {
            Err(userlib::CallError::Kernel(Error::PeerDied)) => Ok(()),
            other => Err(alloc::format!("the victim's door answered {other:?}")),
        },
    );
    drop(victim);
    drop(watch.client);

    drop(done);
    drop(pages);
    drop(object);
    let after = setup("COUNTERS", kernel::counters())?;
    let holdings =
        |c: &abi::kcall::KernelCounters| (c.processes, c.threads, c.objects, c.descriptors);
    tally.check(
        "the victim, the reader thread, the object and its mappings are gone",
        if holdings(&after) == holdings(&before) {
            Ok(())
        } else {
            Err(alloc::format!("{before:?} -> {after:?}"))
        },
    );
    Ok(())
}
