//! Kernel functions about the machine as a whole: DEBUG_WRITE, DEBUG_EXIT
//! and MACHINE_INFO (machine-control capability), COUNTERS, CLOCK and
//! ARCHIVE_READ (boot-archive capability).

use abi::kcall::{
    ArchiveReadReply, ArchiveReadRequest, ClockReply, KernelCounters, MAX_DEBUG_WRITE, MachineInfo,
    REPLY_PAYLOAD_OFFSET,
};
use abi::{Error, MessageSizes, TrapArgs};
use zerocopy::{FromBytes, IntoBytes};

use super::{Call, KernelReply, NO_REPLY};
use crate::kernel::{Kernel, Outcome};
use crate::machine::Machine;

/// DEBUG_WRITE: the request's bytes on the kernel console, each line
/// marked as user output; at most [`MAX_DEBUG_WRITE`] of them.
pub(super) fn debug_write(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    if call.data.len() > MAX_DEBUG_WRITE {
        return Err(Error::BadSizes);
    }
    kernel
        .user_output
        .write(call.data, |piece| machine.console_write(piece));
    kernel.reply_to(machine, call, NO_REPLY)
}

/// DEBUG_EXIT: ends the machine with a verdict (where the boot allows it).
pub(super) fn debug_exit(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let code = super::threads::exit_code(call)?;
    machine.debug_exit(code == 0)?;
    kernel.reply_to(machine, call, NO_REPLY)
}

/// COUNTERS: what the kernel holds, and the machine's free frames.
pub(super) fn counters(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    call.no_request()?;
    let counters = KernelCounters {
        free_frames: machine.free_frames(),
        ..kernel.counters()
    };
    kernel.reply_to(machine, call, KernelReply::payload(counters.as_bytes()))
}

/// CLOCK: the timer ticks taken so far and their rate.
pub(super) fn clock(kernel: &mut Kernel, machine: &mut impl Machine, call: &Call<'_>) -> Outcome {
    call.no_request()?;
    let clock = ClockReply::new(kernel.ticks, machine.timer_hz());
    kernel.reply_to(machine, call, KernelReply::payload(clock.as_bytes()))
}

/// MACHINE_INFO: what the kernel learnt of the machine at boot that user
/// space cannot find by itself: where the ACPI RSDP is (0: nowhere), which
/// a holder of the capability maps with MEMORY_DIRECT to read the tables.
pub(super) fn machine_info(
    kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    call.no_request()?;
    let info = MachineInfo {
        rsdp: machine.rsdp().unwrap_or(0),
    };
    kernel.reply_to(machine, call, KernelReply::payload(info.as_bytes()))
}

/// ARCHIVE_READ: the file's size, then as much of it from the request's
/// offset as fits the caller's buffer.
pub(super) fn archive_read(
    _kernel: &mut Kernel,
    machine: &mut impl Machine,
    call: &Call<'_>,
) -> Outcome {
    let data = call.data;
    let header: ArchiveReadRequest = ArchiveReadRequest::read_from_prefix(data)
        .map(|(r, _)| r)
        .map_err(|_| Error::BadSizes)?;
    let name_end = size_of::<ArchiveReadRequest>().saturating_add(header.name_length as usize);
    if header.reserved != 0 {
        return Err(Error::ReservedBits);
    }
    if name_end != data.len() {
        return Err(Error::BadSizes);
    }
    let name = &data[size_of::<ArchiveReadRequest>()..name_end];
    let offset = header.offset;

    let header_end = REPLY_PAYLOAD_OFFSET + size_of::<ArchiveReadReply>();
    let room = usize::from(call.layout.total_size).saturating_sub(header_end);
    let mut chunk = [0u8; 256];
    let mut copied = 0usize;
    let mut size = machine.read_archive(name, offset, &mut [])?.0;
    while copied < room {
        let want = (room - copied).min(chunk.len());
        let (file_size, got) =
            machine.read_archive(name, offset + copied as u64, &mut chunk[..want])?;
        size = file_size;
        if got == 0 {
            break;
        }
        machine.write_user(
            call.space,
            call.buffer + (header_end + copied) as u64,
            &chunk[..got],
        )?;
        copied += got;
    }
    let mut head = [0u8; 16];
    head[REPLY_PAYLOAD_OFFSET..].copy_from_slice(&size.to_le_bytes());
    machine.write_user(call.space, call.buffer, &head)?;
    let sizes = MessageSizes::new().with_data_size((header_end + copied) as u16);
    Ok(Some(TrapArgs::replied(0, 0, sizes)))
}
