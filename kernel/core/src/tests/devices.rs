//! Devices for drivers (ABI.md §6.3): IO_PORT_GRANT's ranges and their
//! limit, the machine told the ports of the space they belong to, every
//! refusal changing nothing; interrupt objects: one per line, a delivery
//! signalling the event once and leaving the line masked until
//! INTERRUPT_ACK, the object's end masking the line and letting the event
//! go, a process's death doing the same, and a woken driver of a higher
//! priority taking the CPU at once.

use abi::kcall::{InterruptRequest, IoPortRequest, MAX_IO_RANGES};
use abi::process::{FIRST_MACHINE_CONTROL, FIRST_PROCESS_CONTROL};
use abi::{Descriptor, DescriptorSlot, Error, KernelFunction, ObjectKind, Rights};
use proptest::prelude::*;
use zerocopy::IntoBytes;

use crate::kcall::devices::IoRange;
use crate::object::OBJECT_COST;
use crate::process::DESCRIPTOR_COST;
use crate::thread::{ThreadId, ThreadState};

use super::fake_machine::{KBUF, KTOTAL};
use super::harness::*;

/// A refused call (`call`) must leave everything as it was.
fn refused(w: &mut World, expected: Error, call: impl FnOnce(&mut World) -> Result<(), Error>) {
    let before = w.snapshot();
    assert_eq!(call(w), Err(expected));
    assert_eq!(w.snapshot(), before, "a refusal changed something");
    w.assert_invariants();
}

fn grant(
    w: &mut World,
    t: ThreadId,
    process: Descriptor,
    first: u16,
    count: u16,
) -> Result<(), Error> {
    let request = IoPortRequest::new(process, first, count);
    let regs = w.kcall(
        t,
        KernelFunction::IoPortGrant,
        FIRST_MACHINE_CONTROL,
        request.as_bytes(),
    );
    regs.kernel_error().map_or(Ok(()), Err)
}

fn interrupt_create(
    w: &mut World,
    t: ThreadId,
    line: u32,
    event: Descriptor,
) -> Result<Descriptor, Error> {
    let request = InterruptRequest::new(line, event);
    w.new_descriptor(
        t,
        KernelFunction::InterruptCreate,
        FIRST_MACHINE_CONTROL,
        request.as_bytes(),
    )
}

fn ack(w: &mut World, t: ThreadId, interrupt: Descriptor) -> Result<(), Error> {
    let regs = w.kcall(t, KernelFunction::InterruptAck, interrupt, &[]);
    regs.kernel_error().map_or(Ok(()), Err)
}

fn range(first: u16, count: u16) -> IoRange {
    IoRange { first, count }
}

/// The ranges the machine was told for `t`'s space.
fn machine_ports(w: &World, t: ThreadId) -> Vec<IoRange> {
    let space = w.space(w.process_of(t));
    w.m.io_ports.get(&space).cloned().unwrap_or_default()
}

/// EVENT_WAIT by `t`, which may block: its registers if it returned.
fn wait(w: &mut World, t: ThreadId, event: Descriptor) -> Option<abi::TrapArgs> {
    w.send(
        t,
        KernelFunction::EventWait as i32,
        event,
        msg(KBUF, &[], KTOTAL),
    )
}

/// A child process and init's handle on it.
fn child(w: &mut World) -> Child {
    w.spawn_ok(b"worker", &[])
}

// ----- IO_PORT_GRANT -----

#[test]
fn a_grant_reaches_the_machine_for_that_space_only() {
    let mut w = World::new();
    let t = w.init_thread;
    let c = child(&mut w);
    assert_eq!(grant(&mut w, t, c.handle, 0x60, 5), Ok(()));
    assert_eq!(machine_ports(&w, c.thread), vec![range(0x60, 5)]);
    assert_eq!(machine_ports(&w, t), vec![]);
    assert!(
        w.k.processes
            .get(c.process)
            .is_some_and(|p| p.io_ports.allows(0x64))
    );
    assert!(
        w.k.processes
            .get(c.process)
            .is_some_and(|p| !p.io_ports.allows(0x65))
    );
    // The caller's own process through NULL; grants add up.
    assert_eq!(grant(&mut w, t, Descriptor::NULL, 0x40, 4), Ok(()));
    assert_eq!(grant(&mut w, t, Descriptor::NULL, 0x80, 1), Ok(()));
    assert_eq!(machine_ports(&w, t), vec![range(0x40, 4), range(0x80, 1)]);
    w.assert_invariants();
}

#[test]
fn at_most_eight_ranges_and_a_held_range_takes_no_slot() {
    let mut w = World::new();
    let t = w.init_thread;
    for i in 0..MAX_IO_RANGES as u16 {
        assert_eq!(
            grant(&mut w, t, Descriptor::NULL, 0x1000 + 0x10 * i, 4),
            Ok(())
        );
    }
    assert_eq!(
        grant(&mut w, t, Descriptor::NULL, 0x1001, 2),
        Ok(()),
        "inside a held range"
    );
    assert_eq!(machine_ports(&w, t).len(), MAX_IO_RANGES);
    refused(&mut w, Error::TableFull, |w| {
        grant(w, t, Descriptor::NULL, 0x2000, 1)
    });
    // Straddling two held ranges is a new range too.
    refused(&mut w, Error::TableFull, |w| {
        grant(w, t, Descriptor::NULL, 0x1002, 0x10)
    });
}

#[test]
fn grant_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let c = child(&mut w);
    let event = w.event_create(t);
    let weak = w
        .duplicate(t, c.handle, Rights::TRANSFER)
        .expect("DUPLICATE");
    refused(&mut w, Error::InvalidArgument, |w| {
        grant(w, t, c.handle, 0x60, 0)
    });
    refused(&mut w, Error::InvalidArgument, |w| {
        grant(w, t, c.handle, 0xffff, 2)
    });
    refused(&mut w, Error::KernelDevice, |w| {
        grant(w, t, c.handle, 0x3ff, 1)
    });
    refused(&mut w, Error::KernelDevice, |w| {
        grant(w, t, c.handle, 0x300, 0xf9)
    });
    refused(&mut w, Error::WrongObjectType, |w| {
        grant(w, t, event, 0x60, 1)
    });
    refused(&mut w, Error::MissingRight, |w| grant(w, t, weak, 0x60, 1));
    refused(&mut w, Error::BadDescriptor, |w| {
        grant(w, t, Descriptor(77), 0x60, 1)
    });
    // The port just below COM1 and the one just above are not the kernel's.
    assert_eq!(grant(&mut w, t, c.handle, 0x3f7, 1), Ok(()));
    assert_eq!(grant(&mut w, t, c.handle, 0x400, 1), Ok(()));
    // Only the machine-control capability grants.
    let request = IoPortRequest::new(c.handle, 0x60, 1);
    refused(&mut w, Error::WrongObjectType, |w| {
        let regs = w.kcall(
            t,
            KernelFunction::IoPortGrant,
            FIRST_PROCESS_CONTROL,
            request.as_bytes(),
        );
        regs.kernel_error().map_or(Ok(()), Err)
    });
    // A process that ended has no ports to be given.
    w.exit_process(c.thread, 0);
    refused(&mut w, Error::PeerDied, |w| grant(w, t, c.handle, 0x60, 1));
}

#[test]
fn a_process_end_forgets_its_ports() {
    let mut w = World::new();
    let t = w.init_thread;
    let c = child(&mut w);
    assert_eq!(grant(&mut w, t, c.handle, 0x60, 1), Ok(()));
    let space = w.space(c.process);
    w.exit_process(c.thread, 0);
    assert!(!w.m.io_ports.contains_key(&space));
    w.assert_invariants();
}

proptest! {
    /// Any sequence of grants: the process's ranges and the machine's agree,
    /// a refusal changes nothing, and every granted port is allowed.
    #[test]
    fn grants_agree_with_the_machine(requests in prop::collection::vec((0u16..0x500, 0u16..0x40), 1..24)) {
        let mut w = World::new();
        let t = w.init_thread;
        let mut granted: Vec<(u16, u16)> = Vec::new();
        for (first, count) in requests {
            let before = w.snapshot();
            match grant(&mut w, t, Descriptor::NULL, first, count) {
                Ok(()) => granted.push((first, count)),
                Err(_) => prop_assert_eq!(w.snapshot(), before),
            }
            let ports = w.k.processes.get(w.init).map(|p| p.io_ports).unwrap_or_default();
            prop_assert_eq!(machine_ports(&w, t), ports.ranges().to_vec());
            for (first, count) in &granted {
                for port in *first..*first + *count {
                    prop_assert!(ports.allows(port));
                }
            }
        }
        w.assert_invariants();
    }
}

// ----- interrupts -----

#[test]
fn an_interrupt_object_holds_its_line_and_its_event() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let charged = w.charged(w.init);
    let interrupt = interrupt_create(&mut w, t, 4, event).expect("INTERRUPT_CREATE");
    assert_eq!(
        w.info(t, interrupt),
        Ok((ObjectKind::Interrupt as u32, Rights::INTERRUPT.0))
    );
    assert_eq!(w.charged(w.init) - charged, OBJECT_COST + DESCRIPTOR_COST);
    assert!(w.m.unmasked_lines.contains(&4));
    refused(&mut w, Error::LineTaken, |w| {
        interrupt_create(w, t, 4, event).map(|_| ())
    });
    // The event lives on in the interrupt object after its own descriptor goes.
    let event_object = w.object_of(w.init, event);
    w.close(t, event);
    assert!(w.k.objects.get(event_object).is_some());
    w.close(t, interrupt);
    assert!(!w.m.unmasked_lines.contains(&4), "the line is masked again");
    assert!(
        w.k.objects.get(event_object).is_none(),
        "the event went with it"
    );
    assert_eq!(w.charged(w.init), charged - OBJECT_COST - DESCRIPTOR_COST);
    // The line can be had again.
    let again = w.event_create(t);
    assert!(interrupt_create(&mut w, t, 4, again).is_ok());
    w.assert_invariants();
}

#[test]
fn interrupt_refusals_change_nothing() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let waiter = w.duplicate(t, event, Rights::WAIT).expect("DUPLICATE");
    let (_owner, client) = w.door_create(t, false);
    refused(&mut w, Error::InvalidArgument, |w| {
        interrupt_create(w, t, 16, event).map(|_| ())
    });
    refused(&mut w, Error::WrongObjectType, |w| {
        interrupt_create(w, t, 1, client).map(|_| ())
    });
    refused(&mut w, Error::MissingRight, |w| {
        interrupt_create(w, t, 1, waiter).map(|_| ())
    });
    refused(&mut w, Error::BadDescriptor, |w| {
        interrupt_create(w, t, 1, Descriptor(99)).map(|_| ())
    });
    w.m.no_interrupt_controller = true;
    refused(&mut w, Error::NotPermitted, |w| {
        interrupt_create(w, t, 1, event).map(|_| ())
    });
    w.m.no_interrupt_controller = false;
    let interrupt = interrupt_create(&mut w, t, 1, event).expect("INTERRUPT_CREATE");
    let weak = w
        .duplicate(t, interrupt, Rights::TRANSFER)
        .expect("DUPLICATE");
    refused(&mut w, Error::MissingRight, |w| ack(w, t, weak));
    refused(&mut w, Error::WrongObjectType, |w| ack(w, t, event));
}

#[test]
fn a_delivery_signals_once_and_masks_until_acknowledged() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let interrupt = interrupt_create(&mut w, t, 3, event).expect("INTERRUPT_CREATE");
    // Acknowledging with nothing delivered changes nothing.
    refused_ok(&mut w, |w| ack(w, t, interrupt));
    // The machine masks the line when it fires; the kernel signals.
    w.m.unmasked_lines.remove(&3);
    w.k.interrupt(&mut w.m, 3);
    let wait = w.kcall(t, KernelFunction::EventWait, event, &[]);
    assert_eq!(
        Some(wait),
        kernel_ok(0, 0, 0),
        "the signal was counted once"
    );
    assert!(
        !w.m.unmasked_lines.contains(&3),
        "masked until acknowledged"
    );
    assert_eq!(ack(&mut w, t, interrupt), Ok(()));
    assert!(w.m.unmasked_lines.contains(&3));
    // A line nobody holds stays masked and signals nothing.
    w.k.interrupt(&mut w.m, 9);
    assert!(!w.m.unmasked_lines.contains(&9));
    w.assert_invariants();
}

/// A call that succeeds and changes nothing.
fn refused_ok(w: &mut World, call: impl FnOnce(&mut World) -> Result<(), Error>) {
    let before = w.snapshot();
    assert_eq!(call(w), Ok(()));
    assert_eq!(w.snapshot(), before, "it changed something");
}

#[test]
fn a_woken_driver_of_a_higher_priority_runs_at_once() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let parked = w.event_create(t);
    let _interrupt = interrupt_create(&mut w, t, 6, event).expect("INTERRUPT_CREATE");
    // A driver thread at init's priority waits on the interrupt's event, a
    // lower one runs while init waits elsewhere.
    let driver = w.thread_create_at(t, abi::kcall::DEFAULT_PRIORITY);
    let low = w.thread_create_at(t, abi::kcall::DEFAULT_PRIORITY - 1);
    w.run(driver);
    assert_eq!(wait(&mut w, driver, event), None);
    assert!(matches!(w.state(driver), ThreadState::Waiting { .. }));
    w.run(t);
    assert_eq!(wait(&mut w, t, parked), None);
    w.run(low);
    w.k.interrupt(&mut w.m, 6);
    assert_eq!(w.k.current(), Some(driver), "the driver took the CPU");
    assert_eq!(w.resume(driver), kernel_ok(0, 0, 0));
    assert!(w.runnable(low), "the preempted thread is ready");
    // A driver no higher than the running thread waits its turn.
    assert_eq!(wait(&mut w, driver, event), None);
    let other = w.event_create(low);
    let _ = other;
    w.run(low);
    let peer = w.thread_create_at(low, abi::kcall::DEFAULT_PRIORITY - 1);
    assert_eq!(wait(&mut w, low, other), None);
    w.run(peer);
    w.k.interrupt(&mut w.m, 6);
    assert_eq!(w.k.current(), Some(driver), "the higher driver runs");
    w.assert_invariants();
}

#[test]
fn a_holders_death_gives_the_line_back() {
    let mut w = World::new();
    let t = w.init_thread;
    let event = w.event_create(t);
    let interrupt = interrupt_create(&mut w, t, 7, event).expect("INTERRUPT_CREATE");
    let c = w.spawn_ok(
        b"worker",
        &[DescriptorSlot::moving(interrupt, Rights::INTERRUPT)],
    );
    assert!(w.m.unmasked_lines.contains(&7));
    w.exit_process(c.thread, 0);
    assert!(!w.m.unmasked_lines.contains(&7));
    assert!(w.k.interrupt_lines[7].is_none());
    assert!(interrupt_create(&mut w, t, 7, event).is_ok());
    w.assert_invariants();
}
