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
