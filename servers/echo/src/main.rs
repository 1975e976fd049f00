//! The echo server: the example to copy when writing a server.
//!
//! A server is a [`Server`] implementation (one `handle` for every call)
//! handed to [`serve`], which receives calls on the server's door and sends
//! the replies. This one asks procman for a door registered as `/srv/echo`
//! (or, when a test starts it with one, serves the owner reference it finds
//! as descriptor 1) and answers the echo protocol (`echo`'s `lib.rs`: ECHO,
//! COUNT, RETURN_DESCRIPTORS). It never exits unless its door fails.
#![cfg_attr(target_os = "none", no_std, no_main)]

use abi::Rights;
use echo::{COUNT, ECHO, REPLY_DOES_NOT_FIT, RETURN_DESCRIPTORS, UNKNOWN_FUNCTION};
use userlib::{Message, Request, Response, Server, Startup, println, serve};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The server's state. Echo needs none: COUNT keeps each client's count in
/// the cookie of that client's reference, where the kernel stores it.
struct Echo;

impl Server for Echo {
    fn handle(&mut self, request: &mut Request<'_>, reply: &mut Message<&mut [u8]>) -> Response {
        match request.function() {
            // Copy the request data into the reply. The push fails if the
            // caller's buffer cannot hold the reply.
            ECHO => match reply.push_data(request.data()) {
                Ok(_) => Response::Reply(u32::from(reply.data_size())),
                Err(_) => Response::Error(REPLY_DOES_NOT_FIT),
            },
            // The cookie arrives with the request; the one set here is
            // stored into the caller's reference with the reply.
            COUNT => {
                let count = request.cookie();
                request.set_cookie(count.wrapping_add(1));
                match reply.push(&count) {
                    Ok(_) => Response::Reply(0),
                    Err(_) => Response::Error(REPLY_DOES_NOT_FIT),
                }
            }
            // Descriptors that arrived are ours once taken; pushing them
            // with push_move sends them back. (Descriptors left untaken are
            // closed by `serve` after the reply is built.)
            RETURN_DESCRIPTORS => {
                let count = request.descriptor_count();
                for index in 0..count {
                    let Some(slot) = request.descriptor_slot(index) else {
                        continue;
                    };
                    let Some(descriptor) = request.take_descriptor(index) else {
                        continue;
                    };
                    if reply.push_move(descriptor, Rights(slot.rights)).is_err() {
                        return Response::Error(REPLY_DOES_NOT_FIT);
                    }
                }
                Response::Reply(count as u32)
            }
            _ => Response::Error(UNKNOWN_FUNCTION),
        }
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
    let error = serve(&door, &mut Echo);
    println!("echo: stopped: {error}");
    1
}
