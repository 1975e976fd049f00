//! Loading a program from the boot archive into a new process (DESIGN §6,
//! ABI.md §6.8 and §7a.5): procman's loader, and the conformance suite's.
//!
//! A program's **image** is a memory object holding every loadable
//! segment's pages, its file bytes in place and the rest zero, built once
//! (ARCHIVE_READ, checked by `image::program`) and shared: every process
//! that runs it maps the image's read-only segments straight from it and
//! gets a copy-on-write child of its writable ones. A new process gets a
//! stack object of its own with the argument bytes at its top, and starts
//! in the state ABI.md §7 gives. The layouts are plain decisions, tested
//! on the host; [`ProgramImage`] makes the kernel calls (PROCESS_CREATE,
//! PROCESS_MAP, PROCESS_START). This module must never map an image that
//! `image::program` did not accept.

use abi::kcall::{ProcessStartRequest, protection};
use abi::process::{MAX_ARGUMENT_BYTES, USER_STACK_SIZE, USER_STACK_TOP};
use abi::{Descriptor, DescriptorSlot, Error, PAGE_BYTES};
use image::program::{MAX_SEGMENTS, ProgramError, ProgramPlan};

use crate::descriptor::OwnedDescriptor;
use crate::kernel;
use crate::raw::RawPages;

/// One segment's place in the image and in a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentLayout {
    /// Its first page in a process.
    pub address: u64,
    /// Its first page in the image object.
    pub image_offset: u64,
    /// How many pages.
    pub pages: u64,
    /// The protection it is mapped with, never widened by the process.
    pub protection: u32,
    /// Writable segments are mapped from a copy-on-write child of the
    /// image, one per process; the others straight from the image, shared.
    pub private: bool,
    /// Where in the image object its file bytes go.
    pub bytes_at: u64,
    /// Where they are in the file, and how many.
    pub file_offset: u64,
    /// How many file bytes.
    pub file_size: u64,
}

impl SegmentLayout {
    /// Its length in bytes.
    pub const fn length(&self) -> u64 {
        self.pages * PAGE_BYTES
    }
}

/// A program's image object and where each segment goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageLayout {
    /// Pages of the image object.
    pub pages: u64,
    /// The entry point.
    pub entry: u64,
    /// The segments, in the plan's order.
    pub segments: [SegmentLayout; MAX_SEGMENTS],
    /// How many of `segments` are used.
    pub count: usize,
}

impl ImageLayout {
    /// The segments used.
    pub fn segments(&self) -> &[SegmentLayout] {
        &self.segments[..self.count]
    }
}

/// Lays out a checked plan: each segment's pages one after the other in
/// the image object.
pub fn layout(plan: &ProgramPlan) -> ImageLayout {
    let mut image = ImageLayout {
        entry: plan.entry,
        count: plan.segment_count.min(MAX_SEGMENTS),
        ..ImageLayout::default()
    };
    let mut next = 0;
    for (segment, laid) in plan.segments[..image.count]
        .iter()
        .zip(image.segments.iter_mut())
    {
        let mut bits = protection::READ;
        if segment.writable {
            bits |= protection::WRITE;
        }
        if segment.executable {
            bits |= protection::EXECUTE;
        }
        *laid = SegmentLayout {
            address: segment.first_page(),
            image_offset: next,
            pages: segment.pages(),
            protection: bits,
            private: segment.writable,
            bytes_at: next + (segment.address - segment.first_page()),
            file_offset: segment.file_offset,
            file_size: segment.file_size,
        };
        next += laid.length();
    }
    image.pages = next / PAGE_BYTES;
    image
}

/// A new process's stack: a memory object of its own, the argument
/// bytes at its top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackLayout {
    /// Pages of the stack object.
    pub pages: u64,
    /// Where it is mapped in the process (its lowest address).
    pub base: u64,
    /// Where the argument bytes go (16-byte aligned).
    pub arguments_at: u64,
    /// The first thread's stack pointer: 16-byte aligned, below them.
    pub stack_pointer: u64,
    /// The offset in the stack object of the first page holding the
    /// arguments, and how many bytes from there procman maps to write them.
    pub write_offset: u64,
    /// See `write_offset`.
    pub write_length: u64,
}

/// Lays out the stack for `arguments` bytes of arguments, as the kernel's
/// own loader does (ABI.md §7); `None` past `MAX_ARGUMENT_BYTES`.
pub fn stack(arguments: usize) -> Option<StackLayout> {
    if arguments > MAX_ARGUMENT_BYTES {
        return None;
    }
    let base = USER_STACK_TOP - USER_STACK_SIZE;
    let arguments_at = (USER_STACK_TOP - arguments as u64) & !0xf;
    let first_page = arguments_at & !(PAGE_BYTES - 1);
    Some(StackLayout {
        pages: USER_STACK_SIZE / PAGE_BYTES,
        base,
        arguments_at,
        stack_pointer: arguments_at - 16,
        write_offset: first_page - base,
        write_length: USER_STACK_TOP - first_page,
    })
}

/// Why a program could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The boot archive has no file of that name.
    NotInArchive,
    /// The file is not a program this system runs.
    NotAProgram(ProgramError),
    /// More argument bytes than `MAX_ARGUMENT_BYTES`.
    ArgumentsTooLong,
    /// A kernel call failed.
    Kernel(Error),
}

impl From<Error> for LoadError {
    fn from(error: Error) -> Self {
        LoadError::Kernel(error)
    }
}

/// A refused [`ProgramImage::build`], and whether the descriptors it was
/// given had moved already (into a process that never ran, and is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildError {
    /// What went wrong.
    pub error: LoadError,
    /// Whether the descriptors are gone with the process.
    pub moved: bool,
}

/// A process built and not started: its handle, and how to start it.
#[derive(Debug)]
pub struct Unstarted {
    /// The handle (dropping it ends the process, which never ran).
    pub handle: OwnedDescriptor,
    /// Its first thread's start (PROCESS_START).
    pub start: ProcessStartRequest,
}

impl Unstarted {
    /// Starts it; its handle.
    pub fn start(self) -> Result<OwnedDescriptor, Error> {
        kernel::process_start(self.handle.descriptor(), self.start)?;
        Ok(self.handle)
    }
}

/// A program's image object (this process's reference, every right) and
/// where its segments go.
#[derive(Debug)]
pub struct ProgramImage {
    memory: OwnedDescriptor,
    layout: ImageLayout,
}

impl ProgramImage {
    /// Reads the boot archive's `name` (needs the boot-archive
    /// capability), checks it and builds its image.
    pub fn read(name: &str) -> Result<Self, LoadError> {
        let bytes = kernel::archive_read_all(name).map_err(|e| match e {
            Error::InvalidArgument => LoadError::NotInArchive,
            e => LoadError::Kernel(e),
        })?;
        let plan = image::program::plan(&bytes).map_err(LoadError::NotAProgram)?;
        let layout = layout(&plan);
        let pages = u32::try_from(layout.pages)
            .map_err(|_| LoadError::NotAProgram(ProgramError::SegmentOutOfRange))?;
        let memory = kernel::memory_create(pages)?;
        let window = RawPages::map_object(
            memory.descriptor(),
            0,
            0,
            layout.pages * PAGE_BYTES,
            protection::READ | protection::WRITE,
        )?;
        for (laid, segment) in layout.segments().iter().zip(&plan.segments) {
            window.write(window.base() + laid.bytes_at, segment.bytes(&bytes));
        }
        Ok(ProgramImage { memory, layout })
    }

    /// Its layout.
    pub fn layout(&self) -> &ImageLayout {
        &self.layout
    }

    /// A new process (needs the process-control capability) running this
    /// image with `descriptors` as its descriptors 1..=n and `arguments`,
    /// built and not started.
    pub fn build(
        &self,
        descriptors: &[DescriptorSlot],
        arguments: &[u8],
    ) -> Result<Unstarted, BuildError> {
        let stack = stack(arguments.len()).ok_or(BuildError {
            error: LoadError::ArgumentsTooLong,
            moved: false,
        })?;
        let handle = kernel::process_create(descriptors).map_err(|e| BuildError {
            error: LoadError::Kernel(e),
            moved: false,
        })?;
        // From here a refusal drops the handle, which ends the process: it
        // never ran, and the descriptors it was given end with it.
        self.map_into(handle.descriptor(), &stack, arguments)
            .map_err(|e| BuildError {
                error: LoadError::Kernel(e),
                moved: true,
            })?;
        let start = ProcessStartRequest::new(
            self.layout.entry,
            stack.stack_pointer,
            stack.arguments_at,
            arguments.len() as u64,
        );
        Ok(Unstarted { handle, start })
    }

    /// Maps the image and a new stack holding `arguments` into the process
    /// `handle` names.
    fn map_into(
        &self,
        handle: Descriptor,
        stack: &StackLayout,
        arguments: &[u8],
    ) -> Result<(), Error> {
        let shared = self.memory.descriptor();
        for laid in self.layout.segments() {
            if laid.private {
                // Its own copy-on-write child: closed here, kept by the mapping.
                let copy = kernel::memory_cow(shared, laid.image_offset, laid.length())?;
                kernel::process_map(
                    handle,
                    copy.descriptor(),
                    laid.address,
                    0,
                    laid.length(),
                    laid.protection,
                )?;
            } else {
                kernel::process_map(
                    handle,
                    shared,
                    laid.address,
                    laid.image_offset,
                    laid.length(),
                    laid.protection,
                )?;
            }
        }
        let memory = kernel::memory_create(stack.pages as u32)?;
        if !arguments.is_empty() {
            let window = RawPages::map_object(
                memory.descriptor(),
                0,
                stack.write_offset,
                stack.write_length,
                protection::READ | protection::WRITE,
            )?;
            window.write(
                window.base() + (stack.arguments_at - stack.base - stack.write_offset),
                arguments,
            );
        }
        kernel::process_map(
            handle,
            memory.descriptor(),
            stack.base,
            0,
            stack.pages * PAGE_BYTES,
            protection::READ | protection::WRITE,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::program::Segment;

    fn plan(segments: &[Segment]) -> ProgramPlan {
        let mut plan = ProgramPlan {
            entry: 0x40_1000,
            segment_count: segments.len(),
            ..ProgramPlan::default()
        };
        plan.segments[..segments.len()].copy_from_slice(segments);
        plan
    }

    #[test]
    fn segments_follow_each_other_in_the_image_with_their_bytes_in_place() {
        let text = Segment {
            address: 0x40_1000,
            memory_size: 0x1800,
            file_offset: 0x1000,
            file_size: 0x1800,
            writable: false,
            executable: true,
        };
        let data = Segment {
            address: 0x40_3010,
            memory_size: 0x3000,
            file_offset: 0x2810,
            file_size: 0x20,
            writable: true,
            executable: false,
        };
        let laid = layout(&plan(&[text, data]));
        assert_eq!(laid.pages, 2 + 4);
        assert_eq!(laid.entry, 0x40_1000);
        assert_eq!(
            laid.segments(),
            &[
                SegmentLayout {
                    address: 0x40_1000,
                    image_offset: 0,
                    pages: 2,
                    protection: protection::READ | protection::EXECUTE,
                    private: false,
                    bytes_at: 0,
                    file_offset: 0x1000,
                    file_size: 0x1800,
                },
                SegmentLayout {
                    address: 0x40_3000,
                    image_offset: 0x2000,
                    pages: 4,
                    protection: protection::READ | protection::WRITE,
                    private: true,
                    bytes_at: 0x2010,
                    file_offset: 0x2810,
                    file_size: 0x20,
                },
            ]
        );
    }

    #[test]
    fn the_stack_holds_the_arguments_at_its_top_as_the_kernel_puts_them() {
        let none = stack(0);
        assert_eq!(
            none,
            Some(StackLayout {
                pages: 64,
                base: USER_STACK_TOP - 0x4_0000,
                arguments_at: USER_STACK_TOP,
                stack_pointer: USER_STACK_TOP - 16,
                write_offset: 0x4_0000,
                write_length: 0,
            })
        );
        let some = stack(5);
        assert_eq!(
            some.map(|s| (
                s.arguments_at,
                s.stack_pointer,
                s.write_offset,
                s.write_length
            )),
            Some((USER_STACK_TOP - 16, USER_STACK_TOP - 32, 0x3_f000, 0x1000))
        );
        assert!(stack(MAX_ARGUMENT_BYTES).is_some());
        assert_eq!(stack(MAX_ARGUMENT_BYTES + 1), None);
    }

    proptest::proptest! {
        /// Whatever the plan, the image pages hold every segment's bytes
        /// at its offset within its first page, and no two segments share
        /// an image page.
        #[test]
        fn every_segment_has_pages_of_its_own(
            sizes in proptest::collection::vec((0u64..0x1000, 1u64..0x5000, proptest::prelude::any::<bool>()), 1..8)
        ) {
            let mut address = 0x40_0000;
            let segments: Vec<Segment> = sizes.iter().map(|(start, size, writable)| {
                let s = Segment {
                    address: address + start,
                    memory_size: *size,
                    file_offset: 0,
                    file_size: size / 2,
                    writable: *writable,
                    executable: !writable,
                };
                address = (s.address + s.memory_size).next_multiple_of(PAGE_BYTES);
                s
            }).collect();
            let laid = layout(&plan(&segments));
            let mut next = 0;
            for (s, l) in segments.iter().zip(laid.segments()) {
                proptest::prop_assert_eq!(l.image_offset, next);
                proptest::prop_assert_eq!(l.bytes_at - l.image_offset, s.address - l.address);
                proptest::prop_assert!(l.bytes_at + s.memory_size <= l.image_offset + l.length());
                next += l.length();
            }
            proptest::prop_assert_eq!(laid.pages * PAGE_BYTES, next);
        }
    }
}
