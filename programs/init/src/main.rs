//! init: the first process, started by the kernel from the boot-archive
//! entry `init`, privileged for DOOR_CREATE and SPAWN. For now it sets up
//! the echo example: it creates a user door, starts `echo` with the door's
//! owner reference (moved) as descriptor 1 and `echo-client` with a client
//! reference (copied) as descriptor 1, then waits forever. procman will
//! replace it; it must not grow into a policy-making process manager.
#![cfg_attr(target_os = "none", no_std, no_main)]

use abi::{DescriptorSlot, Error};
use userlib::kernel::{self, DoorKind};
use userlib::{Event, OwnedDescriptor, Startup, println};

/// On the host the crate builds as an empty program.
#[cfg(not(target_os = "none"))]
fn main() {}

userlib::entry!(run);

/// The security type of the echo door (only stored by the kernel for now).
const ECHO_SECURITY_TYPE: u32 = 0;

fn run(_startup: Startup) -> i32 {
    let processes = match start_echo() {
        Ok(processes) => processes,
        Err(error) => {
            println!("init: starting echo failed: {error}");
            return 1;
        }
    };
    // Nothing tells init when its children end, and init ending could end
    // the system: park on an event nobody signals.
    let parked = Event::create().and_then(|event| event.wait());
    println!("init: stopped waiting: {parked:?}");
    drop(processes);
    0
}

/// Creates the echo door and spawns the server and its client; returns
/// their process descriptors.
fn start_echo() -> Result<[OwnedDescriptor; 2], Error> {
    let door = kernel::door_create(DoorKind::User, ECHO_SECURITY_TYPE)?;
    println!(
        "init: created a user door: owner reference {}, client reference {}",
        door.owner.descriptor().0,
        door.client.descriptor().0
    );
    // Slots may only grant rights the reference holds, so pass exactly
    // the rights each one has (a move must keep RECEIVE).
    let owner_rights = door.owner.info()?.rights;
    let client_rights = door.client.info()?.rights;

    let owner = door.owner.into_raw();
    let server = kernel::spawn("echo", &[], &[DescriptorSlot::moving(owner, owner_rights)])?;
    println!(
        "init: spawned echo (process descriptor {}) with the owner reference moved in as its descriptor 1",
        server.descriptor().0
    );

    let client = kernel::spawn(
        "echo-client",
        &[],
        &[DescriptorSlot::copy(
            door.client.descriptor(),
            client_rights,
        )],
    )?;
    println!(
        "init: spawned echo-client (process descriptor {}) with a copy of the client reference as its descriptor 1",
        client.descriptor().0
    );
    // Our own client reference is closed here; echo-client holds its copy.
    Ok([server, client])
}
