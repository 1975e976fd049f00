//! The echo server: the example to copy when writing a server.
//!
//! A server implements the trait its interface declaration generates (here
//! `echo::EchoServer`, declared in `lib.rs`): one method per function, with
//! the request's header, bytes and descriptors as arguments and the reply's
//! header as the result; the reply's bytes, descriptors and msgRetVal go
//! through the [`Call`]. The trait's `serve` receives calls on the door,
//! checks each request's shape, calls the method and sends the reply. This
//! server asks procman for a door registered as `/srv/echo` (or, when a
//! test starts it with one, serves the owner reference it finds as
//! descriptor 1). It never exits unless its door fails.
#![cfg_attr(target_os = "none", no_std, no_main)]

use abi::Rights;
use echo::{EchoError, EchoServer};
use userlib::interface::{Arrived, Call, Refusal};
use userlib::{Startup, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The server's state. Echo needs none: COUNT keeps each client's count in
/// the cookie of that client's reference, where the kernel stores it.
struct Echo;

impl EchoServer for Echo {
    fn echo(&mut self, call: &mut Call<'_>, bytes: &[u8]) -> Result<(), Refusal<EchoError>> {
        // The push fails if the caller's buffer cannot hold the reply.
        call.push_bytes(bytes)
            .map_err(|_| EchoError::ReplyDoesNotFit)?;
        call.set_value(bytes.len() as u32);
        Ok(())
    }

    fn count(&mut self, call: &mut Call<'_>) -> Result<u64, Refusal<EchoError>> {
        // The cookie arrives with the request; the one set here is stored
        // into the caller's reference with the reply.
        let count = call.cookie();
        call.set_cookie(count.wrapping_add(1));
        Ok(count)
    }

    fn return_descriptors(
        &mut self,
        call: &mut Call<'_>,
        descriptors: &mut Arrived<'_>,
    ) -> Result<(), Refusal<EchoError>> {
        // Descriptors that arrived are ours once taken; push_move sends
        // them back. (Those left untaken are closed after the reply.)
        for index in 0..descriptors.len() {
            let Some(slot) = descriptors.slot(index) else {
                continue;
            };
            let Some(descriptor) = descriptors.take(index) else {
                continue;
            };
            call.push_move(descriptor, Rights(slot.rights))
                .map_err(|_| EchoError::ReplyDoesNotFit)?;
        }
        call.set_value(descriptors.len() as u32);
        Ok(())
    }
}

fn run(mut startup: Startup) -> i32 {
    let door = match startup.take_descriptor(1) {
        Some(door) => door,
        // Started by procman: create the door and register its name.
        None => match userlib::procman::create_object(Some(echo::NAME), false, echo::SECURITY_TYPE)
        {
            Ok(object) => {
                // Callers open the name; our own client reference is not needed.
                drop(object.client);
                println!("echo: registered {}", echo::NAME);
                object.owner
            }
            Err(error) => {
                println!("echo: cannot register {}: {error}", echo::NAME);
                return 1;
            }
        },
    };
    println!("echo: serving door descriptor {}", door.descriptor().0);
    // `serve` returns only when the door cannot be received from any more.
    let error = Echo.serve(&door);
    println!("echo: stopped: {error}");
    1
}

/// The echo server behind its own client stub, through a `Loopback` (no
/// kernel: descriptors travel as numbers).
#[cfg(test)]
mod tests {
    use super::*;
    use abi::{Descriptor, DescriptorSlot, Function};
    use echo::{COUNT, EchoClient};
    use userlib::interface::{ClientError, Loopback, Transport};
    use userlib::{CallError, Message};

    #[test]
    fn echo_sends_the_data_back_with_its_length() {
        let mut echo = Echo;
        let client = EchoClient::over(Loopback::new(echo.server()));
        for size in [0, 64, 1024, 4087] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let reply = client.echo(&data);
            assert_eq!(
                reply.as_ref().map(|r| (r.value as usize, r.bytes())),
                Ok((size, &data[..]))
            );
        }
        // 8 bytes of status and 4088 of data exceed the 4095-byte buffer.
        assert_eq!(
            client.echo(&[0; 4088]).map(|r| r.value),
            Err(ClientError::Interface(EchoError::ReplyDoesNotFit))
        );
    }

    #[test]
    fn count_counts_in_the_cookie() {
        let mut echo = Echo;
        let client = EchoClient::over(Loopback::new(echo.server()));
        let counts: Vec<_> = (0..3).map(|_| client.count().map(|r| r.header)).collect();
        assert_eq!(counts, [Ok(0), Ok(1), Ok(2)]);
        assert_eq!(client.transport().cookie(), 3);
    }

    #[test]
    fn descriptors_come_back_moved_with_their_rights() {
        let mut echo = Echo;
        let client = EchoClient::over(Loopback::new(echo.server()));
        let rights = Rights::SEND.union(Rights::TRANSFER);
        let sent = [
            DescriptorSlot::copy(Descriptor(6), rights),
            DescriptorSlot::copy(Descriptor(7), Rights::TRANSFER),
        ];
        let mut reply = client.return_descriptors(&sent).ok();
        let back: Vec<_> = (0..2)
            .filter_map(|i| reply.as_ref().and_then(|r| r.descriptor_slot(i)))
            .map(|slot| (slot.descriptor, Rights(slot.rights), slot.mode))
            .collect();
        let moved = abi::TransferMode::Move as u32;
        assert_eq!(back, [(6, rights, moved), (7, Rights::TRANSFER, moved)]);
        assert_eq!(reply.as_ref().map(|r| r.value), Some(2));
        for index in 0..2 {
            let taken = reply.as_mut().and_then(|r| r.take_descriptor(index));
            let _ = taken.map(userlib::OwnedDescriptor::into_raw);
        }
    }

    /// The client call README.md shows, as written there.
    fn readme_client(door: Descriptor) -> Result<(), ClientError<EchoError>> {
        let client = EchoClient::new(door); // a client reference to the echo door
        let reply = client.echo(b"hello")?;
        assert_eq!((reply.value, reply.bytes()), (5, &b"hello"[..]));
        Ok(())
    }

    #[test]
    fn the_readme_client_call_builds() {
        // No kernel on the host: the trap fails.
        assert_eq!(
            readme_client(Descriptor(1)),
            Err(ClientError::Kernel(abi::Error::InvalidFunction))
        );
    }

    #[test]
    fn unknown_functions_and_malformed_requests_are_refused() {
        let mut echo = Echo;
        let loopback = Loopback::new(echo.server());
        let mut message = Message::new();
        assert_eq!(
            loopback.call(Function(0x807f), &mut message),
            Err(CallError::Server(EchoError::UnknownFunction as u32))
        );
        assert!(message.push_data(b"extra").is_ok());
        assert_eq!(
            loopback.call(COUNT, &mut message),
            Err(CallError::Server(EchoError::BadRequest as u32))
        );
    }
}
