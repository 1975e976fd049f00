//! The echo server's client: exercises every function of the echo protocol
//! through its client stub (`echo::EchoClient`) on a client reference to
//! the echo door (descriptor 1 when a test passes one, otherwise opened by
//! name from procman), then an unknown function and a malformed request
//! through a raw call, and prints one line per check. Exits 0 when every
//! check passed, 1 otherwise. It only calls; it must never need any
//! privilege.
#![cfg_attr(target_os = "none", no_std, no_main)]

use abi::function::{Function, USER_BASE};
use abi::{Descriptor, DescriptorSlot, ObjectKind};
use echo::{COUNT, EchoClient, EchoError};
use userlib::interface::ClientError;
use userlib::{CallError, Event, Message, Startup, call, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

fn run(mut startup: Startup) -> i32 {
    let Some(door) = startup.take_descriptor(1).or_else(open_echo) else {
        println!(
            "echo-client: no echo door: none passed, and {} never appeared",
            echo::NAME
        );
        return 1;
    };
    let door = door.descriptor();
    let client = EchoClient::new(door);
    let checks = [
        echo_sizes(&client),
        count_calls(&client),
        return_an_event(&client),
        unknown_function(door),
        malformed_request(door),
    ];
    let failed = checks.iter().filter(|passed| !**passed).count();
    if failed == 0 {
        println!("echo-client: all checks passed");
        0
    } else {
        println!("echo-client: {failed} of {} checks failed", checks.len());
        1
    }
}

/// ECHO with 0, 64 and 1024 bytes: the payload must come back unchanged.
fn echo_sizes(client: &EchoClient) -> bool {
    let mut passed = true;
    for size in [0usize, 64, 1024] {
        let mut pattern = [0u8; 1024];
        for (index, byte) in pattern.iter_mut().enumerate() {
            *byte = (index as u8).wrapping_mul(31).wrapping_add(size as u8);
        }
        let sent = &pattern[..size];
        match client.echo(sent) {
            Ok(reply) if reply.value as usize == size && reply.bytes() == sent => {
                println!("echo-client: ECHO {size} bytes: ok");
            }
            Ok(reply) => {
                println!(
                    "echo-client: ECHO {size} bytes: FAILED (value {}, {} bytes back, data {})",
                    reply.value,
                    reply.bytes().len(),
                    if reply.bytes() == sent {
                        "equal"
                    } else {
                        "different"
                    },
                );
                passed = false;
            }
            Err(error) => {
                println!("echo-client: ECHO {size} bytes: FAILED ({error})");
                passed = false;
            }
        }
    }
    passed
}

/// COUNT three times: each reply carries the cookie of our reference and
/// the server adds one to it, so the values must go up by one per call.
fn count_calls(client: &EchoClient) -> bool {
    let mut previous: Option<u64> = None;
    for round in 1..=3 {
        let cookie = match client.count() {
            Ok(reply) => reply.header,
            Err(error) => {
                println!("echo-client: COUNT call {round}: FAILED ({error})");
                return false;
            }
        };
        if previous.is_some_and(|previous| cookie != previous.wrapping_add(1)) {
            println!(
                "echo-client: COUNT call {round}: FAILED (cookie {cookie} after {previous:?})"
            );
            return false;
        }
        println!("echo-client: COUNT call {round}: cookie {cookie}: ok");
        previous = Some(cookie);
    }
    true
}

/// RETURN_DESCRIPTORS with a copy of a new event: it must come back as an
/// event reference to the same event (a signal through the returned
/// descriptor is seen by a wait on ours).
fn return_an_event(client: &EchoClient) -> bool {
    match round_trip_event(client) {
        Ok(returned) => {
            println!(
                "echo-client: RETURN_DESCRIPTORS: event came back as descriptor {returned}: ok"
            );
            true
        }
        Err(reason) => {
            println!("echo-client: RETURN_DESCRIPTORS: FAILED ({reason})");
            false
        }
    }
}

/// What went wrong in [`round_trip_event`].
#[derive(Debug)]
enum RoundTripError {
    Kernel(abi::Error),
    Call(ClientError<EchoError>),
    Reply(&'static str),
}

impl core::fmt::Display for RoundTripError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RoundTripError::Kernel(error) => write!(f, "{error}"),
            RoundTripError::Call(error) => write!(f, "{error}"),
            RoundTripError::Reply(what) => f.write_str(what),
        }
    }
}

fn round_trip_event(client: &EchoClient) -> Result<u32, RoundTripError> {
    let event = Event::create().map_err(RoundTripError::Kernel)?;
    // Copy it with every right we hold: TRANSFER lets the server move it
    // back, SIGNAL lets us signal through the copy.
    let rights = event
        .descriptor()
        .info()
        .map_err(RoundTripError::Kernel)?
        .rights;
    let sent = DescriptorSlot::copy(event.descriptor().descriptor(), rights);
    let mut reply = client
        .return_descriptors(&[sent])
        .map_err(RoundTripError::Call)?;
    if reply.value != 1 || reply.descriptor_count() != 1 {
        return Err(RoundTripError::Reply(
            "not exactly one descriptor came back",
        ));
    }
    let returned = reply
        .take_descriptor(0)
        .ok_or(RoundTripError::Reply("the reply slot is empty"))?;
    let number = returned.descriptor().0;
    let info = returned.info().map_err(RoundTripError::Kernel)?;
    if info.kind != Some(ObjectKind::Event) {
        return Err(RoundTripError::Reply(
            "the returned descriptor is not an event",
        ));
    }
    Event::from_descriptor(returned)
        .signal()
        .map_err(RoundTripError::Kernel)?;
    // The count was 1, so this returns at once, with 0 left.
    match event.wait().map_err(RoundTripError::Kernel)? {
        0 => Ok(number),
        _ => Err(RoundTripError::Reply("the event count is wrong")),
    }
}

/// A function the server does not know: an error reply with UNKNOWN_FUNCTION
/// (a raw call: the stub only makes declared calls).
fn unknown_function(door: Descriptor) -> bool {
    let function = Function(USER_BASE + 0x7f);
    let expected = EchoError::UnknownFunction as u32;
    match call(door, function, &mut Message::new()) {
        Err(CallError::Server(errno)) if errno == expected => {
            println!(
                "echo-client: unknown function {:#x}: error reply {expected:#x}: ok",
                function.0
            );
            true
        }
        other => {
            println!(
                "echo-client: unknown function {:#x}: FAILED (expected error reply {expected:#x}, got {other:?})",
                function.0
            );
            false
        }
    }
}

/// COUNT with data, which its declaration does not allow: the server's
/// dispatch answers BAD_REQUEST without running the method.
fn malformed_request(door: Descriptor) -> bool {
    let expected = EchoError::BadRequest as u32;
    let mut message = Message::new();
    let result = message
        .push_data(b"extra")
        .map_err(|_| CallError::Kernel(abi::Error::BadSizes))
        .and_then(|message| call(door, COUNT, message));
    match result {
        Err(CallError::Server(errno)) if errno == expected => {
            println!("echo-client: COUNT with data: error reply {expected:#x}: ok");
            true
        }
        other => {
            println!(
                "echo-client: COUNT with data: FAILED (expected error reply {expected:#x}, got {other:?})"
            );
            false
        }
    }
}

/// Opens the echo server's name; it may not be registered yet when both
/// start at boot, so this retries for a while.
fn open_echo() -> Option<userlib::OwnedDescriptor> {
    for _ in 0..1000 {
        match userlib::procman::open(echo::NAME) {
            Ok(door) => {
                println!("echo-client: opened {}", echo::NAME);
                return Some(door);
            }
            Err(CallError::Server(code))
                if code == abi::procman::ProcmanError::NoSuchName as u32 =>
            {
                let _ = userlib::kernel::yield_now();
            }
            Err(error) => {
                println!("echo-client: cannot open {}: {error}", echo::NAME);
                return None;
            }
        }
    }
    None
}
