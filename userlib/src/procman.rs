//! The process manager's client side: names, objects, programs. Every call
//! is a NULL-target SEND of a process-manager function (abi::procman); the
//! kernel routes it to procman, which knows the caller by its cookie.

use abi::procman::{
    CREATE_OBJECT, CreateObjectRequest, LIST, ListReply, NameRequest, OPEN, ProcessReply, SPAWN,
    SpawnProgramRequest, UNLINK, WAIT, WaitReply, WaitRequest,
};
use abi::{Descriptor, DescriptorSlot, Error};
use alloc::string::String;
use alloc::vec::Vec;

use crate::client::{CallError, call};
use crate::descriptor::OwnedDescriptor;
use crate::message::Message;

/// The references CREATE_OBJECT returns.
#[derive(Debug)]
pub struct Object {
    /// The owner reference (RECEIVE).
    pub owner: OwnedDescriptor,
    /// A client reference (SEND), to keep or pass on.
    pub client: OwnedDescriptor,
}

fn length(bytes: &[u8]) -> Result<u32, CallError> {
    u32::try_from(bytes.len()).map_err(|_| CallError::Kernel(Error::BadSizes))
}

fn overflow<T>(_: T) -> CallError {
    CallError::Kernel(Error::BadSizes)
}

fn take(message: &mut Message, index: usize) -> Result<OwnedDescriptor, CallError> {
    message
        .take_descriptor(index)
        .ok_or(CallError::Kernel(Error::BadSizes))
}

/// CREATE_OBJECT: a new door of `security_type`, a system door when
/// `system`, registered under `name` when given.
pub fn create_object(
    name: Option<&str>,
    system: bool,
    security_type: u32,
) -> Result<Object, CallError> {
    let name = name.unwrap_or("").as_bytes();
    length(name)?;
    let request = CreateObjectRequest::new(system, security_type, name);
    let mut message = Message::new();
    message
        .push(&request)
        .and_then(|m| m.push_data(name))
        .map_err(overflow)?;
    call(Descriptor::NULL, CREATE_OBJECT, &mut message)?;
    let owner = take(&mut message, 0)?;
    let client = take(&mut message, 1)?;
    message.discard();
    Ok(Object { owner, client })
}

fn name_call(function: abi::Function, name: &str) -> Result<Message, CallError> {
    length(name.as_bytes())?;
    let request = NameRequest::new(name.as_bytes());
    let mut message = Message::new();
    message
        .push(&request)
        .and_then(|m| m.push_data(name.as_bytes()))
        .map_err(overflow)?;
    call(Descriptor::NULL, function, &mut message)?;
    Ok(message)
}

/// OPEN: a client reference to the object registered as `name`.
pub fn open(name: &str) -> Result<OwnedDescriptor, CallError> {
    let mut message = name_call(OPEN, name)?;
    let reference = take(&mut message, 0);
    message.discard();
    reference
}

/// UNLINK: removes `name`, which this process registered.
pub fn unlink(name: &str) -> Result<(), CallError> {
    name_call(UNLINK, name).map(|_| ())
}

/// LIST: the entries of `directory` (subdirectories end with `/`) and
/// whether the list was cut short.
pub fn list(directory: &str) -> Result<(Vec<String>, bool), CallError> {
    let message = name_call(LIST, directory)?;
    let header: ListReply = message
        .read_payload(0)
        .ok_or(CallError::Kernel(Error::BadSizes))?;
    let names = message
        .payload()
        .get(size_of::<ListReply>()..)
        .unwrap_or(&[]);
    let names = core::str::from_utf8(names).map_err(|_| CallError::Kernel(Error::BadSizes))?;
    Ok((
        names.split_terminator('\n').map(String::from).collect(),
        header.truncated != 0,
    ))
}

/// SPAWN: starts `program` with `arguments`; `descriptors` become its
/// descriptors 1..=n. Returns its process id.
pub fn spawn(
    program: &str,
    arguments: &[u8],
    descriptors: &[DescriptorSlot],
) -> Result<u32, CallError> {
    length(program.as_bytes())?;
    length(arguments)?;
    let request = SpawnProgramRequest::new(program.as_bytes(), arguments);
    let mut message = Message::new();
    message
        .push(&request)
        .and_then(|m| m.push_data(program.as_bytes()))
        .and_then(|m| m.push_data(arguments))
        .map_err(overflow)?;
    for slot in descriptors {
        message.push_descriptor(*slot).map_err(overflow)?;
    }
    call(Descriptor::NULL, SPAWN, &mut message)?;
    let reply: ProcessReply = message
        .read_payload(0)
        .ok_or(CallError::Kernel(Error::BadSizes))?;
    Ok(reply.pid)
}

/// WAIT: blocks until process `pid` ends and returns its exit status.
pub fn wait(pid: u32) -> Result<u32, CallError> {
    loop {
        let request = WaitRequest::new(pid);
        let mut message = Message::new();
        message.push(&request).map_err(overflow)?;
        call(Descriptor::NULL, WAIT, &mut message)?;
        let reply: WaitReply = message
            .read_payload(0)
            .ok_or(CallError::Kernel(Error::BadSizes))?;
        if reply.exited != 0 {
            message.discard();
            return Ok(reply.status);
        }
        let event = take(&mut message, 0)?;
        message.discard();
        crate::kernel::event_wait(event.descriptor())?;
    }
}
