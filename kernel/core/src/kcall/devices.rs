//! Kernel functions that hand devices to user-space drivers, behind the
//! machine-control capability: IO_PORT_GRANT (a process may use a range of
//! I/O ports) and INTERRUPT_CREATE (an ISA interrupt line is delivered to
//! an event), and INTERRUPT_ACK on the interrupt object that returns.
//!
//! Portable policy only: which ports and lines, who holds them, what a
//! delivery does. Programming the TSS's I/O bitmap and the interrupt
//! controller is the machine's ([`Machine::set_io_ports`],
//! [`Machine::interrupt_route`]). Nothing here allocates: a process's
//! ranges live in a fixed array, and the line table is fixed too.

use abi::kcall::{
    ISA_INTERRUPT_LINES, InterruptRequest, IoPortRequest, KERNEL_CONSOLE_PORTS, MAX_IO_RANGES,
};
use abi::{Descriptor, Error, Rights};

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;
use crate::object::{ObjectBody, ObjectId};
use crate::process::ProcessId;

/// A range of I/O ports: `count` ports from `first` (at least one, ending
/// at or below 65,536).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoRange {
    /// The first port.
    pub first: u16,
    /// How many ports.
    pub count: u16,
}

impl IoRange {
    fn end(self) -> u32 {
        u32::from(self.first) + u32::from(self.count)
    }

    /// Whether every port of `other` is in this range.
    fn covers(self, other: IoRange) -> bool {
        self.first <= other.first && other.end() <= self.end()
    }
}

/// The ports a process may use: at most [`MAX_IO_RANGES`] ranges, kept in
/// the order they were granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoPorts {
    ranges: [IoRange; MAX_IO_RANGES],
    count: usize,
}

impl IoPorts {
    /// The granted ranges.
    pub fn ranges(&self) -> &[IoRange] {
        &self.ranges[..self.count]
    }

    /// Whether `port` is granted.
    pub fn allows(&self, port: u16) -> bool {
        self.ranges().iter().any(|range| {
            range.covers(IoRange {
                first: port,
                count: 1,
            })
        })
    }
}

/// An interrupt object: ISA `line`, delivered to `event`.
#[derive(Debug)]
pub struct Interrupt {
    /// The ISA line.
    pub line: u8,
    /// The event each delivery signals (the object holds a reference).
    pub event: ObjectId,
    /// Delivered and not yet acknowledged: the line is masked meanwhile.
    pub pending: bool,
}

/// IO_PORT_GRANT: `process` (or the caller) may use the ports named.
pub(super) fn io_port_grant(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: IoPortRequest = call.request()?;
    let range = IoRange {
        first: r.first,
        count: r.count,
    };
    if range.count == 0 || range.end() > 0x1_0000 {
        return Err(Error::InvalidArgument);
    }
    // COM1 is the kernel's while it writes its log there (not taken).
    if kernel.kernel_log.is_none()
        && u32::from(range.first) < KERNEL_CONSOLE_PORTS.end
        && KERNEL_CONSOLE_PORTS.start < range.end()
    {
        return Err(Error::KernelDevice);
    }
    let process = granted_process(kernel, call, Descriptor(r.process))?;
    let p = kernel.process_mut(process)?;
    if !p.io_ports.ranges().iter().any(|held| held.covers(range)) {
        if p.io_ports.count == MAX_IO_RANGES {
            return Err(Error::TableFull);
        }
        p.io_ports.ranges[p.io_ports.count] = range;
        p.io_ports.count += 1;
        let (space, ports) = (p.space, p.io_ports);
        machine.set_io_ports(space, ports.ranges());
    }
    kernel.reply_to(machine, call, NO_REPLY)
}

/// The process an IO_PORT_GRANT names: the caller's own for NULL, else
/// the live process behind a handle with SEND.
fn granted_process(
    kernel: &mut Kernel,
    call: &Call<'_>,
    handle: Descriptor,
) -> Result<ProcessId, Error> {
    if handle.is_null() {
        return Ok(call.process);
    }
    let reference = *kernel.process(call.process)?.table.get(handle)?;
    let ObjectBody::Process(process) = kernel
        .objects
        .get(reference.object)
        .map(|o| &o.body)
        .ok_or(Error::BadDescriptor)?
    else {
        return Err(Error::WrongObjectType);
    };
    if !reference.rights.contains(Rights::SEND) {
        return Err(Error::MissingRight);
    }
    let process = *process;
    kernel.process(process).map_err(|_| Error::PeerDied)?;
    Ok(process)
}

/// INTERRUPT_CREATE: ISA `line` now signals the event named; the reply's
/// slot holds the interrupt object, which acknowledges deliveries and
/// whose last reference takes the line back.
pub(super) fn interrupt_create(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let r: InterruptRequest = call.request()?;
    if r.line >= ISA_INTERRUPT_LINES {
        return Err(Error::InvalidArgument);
    }
    let line = r.line as u8;
    let reference = *kernel
        .process(call.process)?
        .table
        .get(Descriptor(r.event))?;
    kernel
        .objects
        .get_mut(reference.object)
        .and_then(|o| o.event_mut())
        .ok_or(Error::WrongObjectType)?;
    if !reference.rights.contains(Rights::SIGNAL) {
        return Err(Error::MissingRight);
    }
    if kernel.interrupt_lines[usize::from(line)].is_some() {
        return Err(Error::LineTaken);
    }
    // Room for the reply's descriptor first, then the line (the one step
    // the machine may refuse), then the object; if that cannot be had the
    // line is masked again, as it was.
    kernel.process_mut(call.process)?.table.reserve(1)?;
    machine.interrupt_route(line)?;
    let interrupt = Interrupt {
        line,
        event: reference.object,
        pending: false,
    };
    let descriptor = match kernel.create_referenced(
        call.process,
        ObjectBody::Interrupt(interrupt),
        Rights::INTERRUPT,
    ) {
        Ok(descriptor) => descriptor,
        Err(error) => {
            machine.interrupt_mask(line);
            return Err(error);
        }
    };
    let object = kernel.process(call.process)?.table.get(descriptor)?.object;
    kernel.retain(reference.object);
    kernel.interrupt_lines[usize::from(line)] = Some(object);
    kernel.reply_to(
        machine,
        call,
        KernelReply::descriptors(&[(descriptor, Rights::INTERRUPT)]),
    )
}

/// INTERRUPT_ACK: the holder has served the delivery; the line is
/// unmasked. Acknowledging with nothing delivered changes nothing.
pub(super) fn interrupt_ack(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    call.no_request()?;
    let reference = call.target()?;
    let ObjectBody::Interrupt(interrupt) = kernel
        .objects
        .get_mut(reference.object)
        .map(|o| &mut o.body)
        .ok_or(Error::BadDescriptor)?
    else {
        return Err(Error::WrongObjectType);
    };
    if !reference.rights.contains(Rights::SEND) {
        return Err(Error::MissingRight);
    }
    if interrupt.pending {
        interrupt.pending = false;
        machine.interrupt_unmask(interrupt.line);
    }
    kernel.reply_to(machine, call, NO_REPLY)
}

impl Kernel {
    /// ISA `line` fired (the machine masked it and ended the interrupt):
    /// its interrupt object's event is signalled, and the line stays masked
    /// until the holder acknowledges. A line no object holds stays masked.
    /// A thread the delivery wakes that outranks the running one runs now.
    /// (Out of line: the trap path's frame stays the size the IPC path
    /// needs.)
    #[inline(never)]
    pub fn interrupt(&mut self, machine: &mut impl Machine, line: u8) {
        let Some(object) = self
            .interrupt_lines
            .get(usize::from(line))
            .copied()
            .flatten()
        else {
            return;
        };
        let Some(ObjectBody::Interrupt(interrupt)) =
            self.objects.get_mut(object).map(|o| &mut o.body)
        else {
            return;
        };
        interrupt.pending = true;
        let event = interrupt.event;
        let _ = self.signal_event(machine, event);
        if let Some(thread) = self.current {
            let priority = self.threads.get(thread).map_or(0, |t| t.priority);
            if self
                .scheduler
                .has_ready_at_or_above(priority.saturating_add(1))
            {
                self.make_ready(thread);
                self.current = None;
            }
        }
        self.reschedule();
    }

    /// An interrupt object went: its line is masked and free again, and
    /// its event reference is let go.
    pub(crate) fn interrupt_gone(&mut self, machine: &mut impl Machine, interrupt: Interrupt) {
        let line = usize::from(interrupt.line);
        if self.interrupt_lines.get(line).copied().flatten().is_some() {
            machine.interrupt_mask(interrupt.line);
            self.interrupt_lines[line] = None;
        }
        self.release_with(machine, interrupt.event);
    }
}
