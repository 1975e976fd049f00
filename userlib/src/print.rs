//! Text to standard output (or error) when the process has one
//! ([`crate::stdio`]), else to the kernel console: [`DebugOutput`] buffers formatted text in a
//! stack buffer of the most one DEBUG_WRITE carries (256 bytes) and sends it
//! when the buffer is full or the output ends, so a line of up to 256 bytes
//! is one write (and such lines of different threads never interleave). [`crate::print!`] and
//! [`crate::println!`] use it.

use core::fmt;

use crate::kernel;

/// The bytes buffered before a DEBUG_WRITE.
pub const LINE_CAPACITY: usize = abi::kcall::MAX_DEBUG_WRITE;

/// A fixed buffer that hands its bytes to `sink` whenever it fills up and
/// when flushed. The sink gets the whole buffer (the kernel writes the
/// reply into it) and the number of bytes to send.
struct LineBuffer<S: FnMut(&mut [u8], usize)> {
    bytes: [u8; LINE_CAPACITY],
    length: usize,
    sink: S,
}

impl<S: FnMut(&mut [u8], usize)> LineBuffer<S> {
    const fn new(sink: S) -> Self {
        LineBuffer {
            bytes: [0; LINE_CAPACITY],
            length: 0,
            sink,
        }
    }

    fn push(&mut self, mut text: &[u8]) {
        while !text.is_empty() {
            if self.length == LINE_CAPACITY {
                self.flush();
            }
            let room = LINE_CAPACITY - self.length;
            let (now, later) = text.split_at(room.min(text.len()));
            self.bytes[self.length..self.length + now.len()].copy_from_slice(now);
            self.length += now.len();
            text = later;
        }
    }

    fn flush(&mut self) {
        if self.length > 0 {
            (self.sink)(&mut self.bytes, self.length);
            self.length = 0;
        }
    }
}

fn debug_write_sink(buffer: &mut [u8], length: usize) {
    // There is nowhere to report a console that does not work.
    let _ = kernel::debug_write_in(buffer, length);
}

/// A `fmt::Write` to the kernel console; what it holds is written when it
/// is flushed or dropped.
pub struct DebugOutput {
    buffer: LineBuffer<fn(&mut [u8], usize)>,
}

impl DebugOutput {
    /// An empty output.
    pub const fn new() -> Self {
        DebugOutput {
            buffer: LineBuffer::new(debug_write_sink),
        }
    }

    /// Sends what is buffered.
    pub fn flush(&mut self) {
        self.buffer.flush();
    }
}

impl Default for DebugOutput {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DebugOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DebugOutput({} bytes buffered)", self.buffer.length)
    }
}

impl fmt::Write for DebugOutput {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.buffer.push(text.as_bytes());
        Ok(())
    }
}

impl Drop for DebugOutput {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A `fmt::Write` to a standard stream, in writes of at most 256 bytes
/// (each goes into the stream whole, below `PIPE_BUF`).
struct StreamOutput {
    buffer: LineBuffer<fn(&mut [u8], usize)>,
}

impl fmt::Write for StreamOutput {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.buffer.push(text.as_bytes());
        Ok(())
    }
}

fn stdout_sink(buffer: &mut [u8], length: usize) {
    // A broken stdout has nowhere to report to either.
    let _ = crate::stdio::write_stream(abi::stream::STDOUT, &buffer[..length]);
}

fn stderr_sink(buffer: &mut [u8], length: usize) {
    let _ = crate::stdio::write_stream(abi::stream::STDERR, &buffer[..length]);
}

/// Formats `arguments` to standard stream `stream` (stdout or stderr) when
/// the process has it, else to the kernel console.
fn print_to(stream: u32, arguments: fmt::Arguments<'_>) {
    if crate::stdio::is_connected(stream) {
        let sink: fn(&mut [u8], usize) = if stream == abi::stream::STDERR {
            stderr_sink
        } else {
            stdout_sink
        };
        let mut output = StreamOutput {
            buffer: LineBuffer::new(sink),
        };
        let _ = fmt::Write::write_fmt(&mut output, arguments);
        output.buffer.flush();
    } else {
        let mut output = DebugOutput::new();
        let _ = fmt::Write::write_fmt(&mut output, arguments);
    }
}

/// What [`crate::print!`] expands to: stdout, or the console without one.
#[doc(hidden)]
pub fn print_arguments(arguments: fmt::Arguments<'_>) {
    print_to(abi::stream::STDOUT, arguments);
}

/// What [`crate::eprint!`] expands to: stderr, or the console without one.
#[doc(hidden)]
pub fn eprint_arguments(arguments: fmt::Arguments<'_>) {
    print_to(abi::stream::STDERR, arguments);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn text_goes_out_in_full_buffers_then_the_rest() {
        let mut writes: Vec<Vec<u8>> = Vec::new();
        {
            let mut buffer = LineBuffer::new(|bytes: &mut [u8], length: usize| {
                assert_eq!(bytes.len(), LINE_CAPACITY);
                writes.push(bytes[..length].to_vec());
            });
            buffer.push(b"hello, ");
            buffer.push(&[b'x'; 1000]);
            buffer.push(b"!\n");
            buffer.flush();
            buffer.flush();
        }
        let lengths: Vec<usize> = writes.iter().map(Vec::len).collect();
        assert_eq!(lengths, [256, 256, 256, 241]);
        assert!(writes[0].starts_with(b"hello, xxx"));
        assert!(writes[3].ends_with(b"x!\n"));
    }

    #[test]
    fn println_reaches_debug_write_intact() {
        use crate::fake_kernel::{self, FakeCall};
        use std::cell::RefCell;
        use std::rc::Rc;
        let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
        let record = seen.clone();
        fake_kernel::run(
            move |call: &mut FakeCall| {
                assert_eq!(call.function(), abi::KernelFunction::DebugWrite.function());
                assert_eq!(call.sizes().total_size(), LINE_CAPACITY as u16);
                record.borrow_mut().push(call.data().to_vec());
                call.reply_ok(&[], &[])
            },
            || crate::println!("count {} of {}", 2, 3),
        );
        assert_eq!(*seen.borrow(), [b"count 2 of 3\n".to_vec()]);
    }

    #[test]
    fn a_short_line_is_one_write() {
        let mut count = 0;
        {
            let mut buffer = LineBuffer::new(|_: &mut [u8], _: usize| count += 1);
            buffer.push(b"one line\n");
            buffer.flush();
        }
        assert_eq!(count, 1);
    }
}
