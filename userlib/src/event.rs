//! [`Event`]: a counting event (EVENT_CREATE / EVENT_SIGNAL / EVENT_WAIT),
//! for blocking on shared-memory rings and the like.

use abi::Error;

use crate::descriptor::OwnedDescriptor;
use crate::kernel;

/// An event reference: [`Event::signal`] adds one to the count,
/// [`Event::wait`] waits for a positive count and takes one.
#[derive(Debug)]
pub struct Event(OwnedDescriptor);

impl Event {
    /// A new event with count 0.
    pub fn create() -> Result<Self, Error> {
        kernel::event_create().map(Event)
    }

    /// An event from a descriptor that names one (for example one that
    /// arrived in a message); the kernel checks the kind on each use.
    pub fn from_descriptor(descriptor: OwnedDescriptor) -> Self {
        Event(descriptor)
    }

    /// The event's descriptor (to pass it in a message).
    pub fn descriptor(&self) -> &OwnedDescriptor {
        &self.0
    }

    /// Gives the descriptor back.
    pub fn into_descriptor(self) -> OwnedDescriptor {
        self.0
    }

    /// Adds one to the count, waking one waiter (needs the SIGNAL right).
    pub fn signal(&self) -> Result<(), Error> {
        kernel::event_signal(self.0.descriptor())
    }

    /// Waits until the count is positive and takes one (needs the WAIT
    /// right); returns the count left.
    pub fn wait(&self) -> Result<u32, Error> {
        kernel::event_wait(self.0.descriptor())
    }
}
