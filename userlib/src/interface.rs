//! Typed server interfaces, as Hubris' idol does it but with a macro
//! instead of code generation: a server's protocol is declared once with
//! [`crate::interface!`], naming each operation's function number, its
//! request (a zerocopy header, trailing bytes, descriptors) and its reply
//! (the same three, after msgRetVal and msgErrno), and the interface's error
//! type. The declaration generates
//!
//! - a client stub, a struct with one method per operation that encodes the
//!   request, calls, and decodes the reply into a [`Replied`] or a
//!   [`ClientError`] (the server's error number decoded into the interface's
//!   error type);
//! - a server trait with one method per operation (typed arguments, typed
//!   reply header) and the provided methods `dispatch` (decode the function
//!   number, check the request's shape, call the method, encode the reply),
//!   `server` (the implementer as a [`crate::Server`]) and `serve`.
//!
//! The wire format is ABI.md §3's: request data = header then bytes, then
//! the descriptor slots; reply data = msgRetVal, msgErrno, header, bytes,
//! then the slots. A request whose data or descriptor count does not match
//! the declaration gets the interface's [`InterfaceError::BAD_REQUEST`] and
//! never reaches the method; a function number the interface does not
//! declare goes to the trait's `other_function` (by default an
//! [`InterfaceError::UNKNOWN_FUNCTION`] error reply).
//!
//! This module holds what the generated code calls: [`invoke`] (the client
//! side of every operation), [`dispatch`] (the server side), the types the
//! methods see ([`Call`], [`Arrived`], [`Refusal`], [`Replied`],
//! [`ClientError`]), the [`Transport`] a stub calls through (a descriptor,
//! or a [`Loopback`] that runs a server in this process, for host tests). It
//! adds nothing to the IPC path itself: stubs call [`crate::call`], servers
//! run in [`crate::serve`].

use core::cell::{Cell, RefCell};

use abi::error::FIRST_SERVER_ERROR;
use abi::function::Function;
use abi::kcall::REPLY_PAYLOAD_OFFSET;
use abi::message::{SLOT_SIZE, descriptor_offset, message_extent};
use abi::{Descriptor, DescriptorSlot, Error, MessageSizes, Rights};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::client::{CallError, call};
use crate::descriptor::OwnedDescriptor;
use crate::ipc::{Received, Reply};
use crate::message::{Message, MessageBuffer, MessageError};
use crate::server::{Request, Response, Server, answer};

/// An interface's error type: its numbers (from `FIRST_SERVER_ERROR`) and
/// the three answers the generated dispatch gives by itself.
pub trait InterfaceError: Copy + core::fmt::Debug {
    /// The answer to a request whose data or descriptors do not have the
    /// operation's declared shape.
    const BAD_REQUEST: Self;
    /// The answer to a function number the interface does not declare.
    const UNKNOWN_FUNCTION: Self;
    /// The answer when the caller's buffer has no room for the reply's
    /// header (or, from the methods, for the rest of the reply).
    const REPLY_DOES_NOT_FIT: Self;

    /// The error's number (msgErrno).
    fn number(self) -> u32;

    /// The error with this number, if the interface has one.
    fn from_number(number: u32) -> Option<Self>;

    /// The error's stable name.
    fn name(self) -> &'static str;
}

/// Why a server method refused a call: what its error reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal<E> {
    /// One of the interface's errors.
    Interface(E),
    /// A kernel error the server met on the caller's behalf (a kernel call
    /// it made for the caller failed).
    Kernel(Error),
}

impl<E: InterfaceError> Refusal<E> {
    /// msgErrno of the error reply.
    pub fn number(self) -> u32 {
        match self {
            Refusal::Interface(error) => error.number(),
            Refusal::Kernel(error) => error as u32,
        }
    }
}

impl<E: InterfaceError> From<E> for Refusal<E> {
    fn from(error: E) -> Self {
        Refusal::Interface(error)
    }
}

impl<E: InterfaceError> From<Error> for Refusal<E> {
    fn from(error: Error) -> Self {
        Refusal::Kernel(error)
    }
}

/// Why a call through a client stub failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError<E> {
    /// The kernel failed the call (`arg0 = -1`): the door is gone, the
    /// descriptor is bad or lacks SEND, the server died, ...; also
    /// `BAD_SIZES` when the request does not fit in a message.
    Kernel(Error),
    /// The server refused with one of the interface's errors.
    Interface(E),
    /// The server refused with a kernel error it met on the caller's
    /// behalf (msgErrno below `FIRST_SERVER_ERROR`).
    ServerKernel(Error),
    /// An error reply whose number neither the interface nor the kernel
    /// knows (a newer server).
    Unknown(u32),
    /// The reply does not have the shape the interface declares (too
    /// short, bytes or descriptors it should not carry); its descriptors
    /// are closed.
    BadReply,
}

impl<E: InterfaceError> ClientError<E> {
    /// The error an error reply's msgErrno names.
    pub fn from_errno(errno: u32) -> Self {
        if let Some(error) = E::from_number(errno) {
            return ClientError::Interface(error);
        }
        match Error::from_number(errno) {
            Some(error) if errno < FIRST_SERVER_ERROR => ClientError::ServerKernel(error),
            _ => ClientError::Unknown(errno),
        }
    }

    /// The error number, whichever side reported it (`BAD_SIZES` for a
    /// reply of the wrong shape).
    pub fn errno(self) -> u32 {
        match self {
            ClientError::Kernel(error) | ClientError::ServerKernel(error) => error as u32,
            ClientError::Interface(error) => error.number(),
            ClientError::Unknown(errno) => errno,
            ClientError::BadReply => Error::BadSizes as u32,
        }
    }
}

impl<E: InterfaceError> From<CallError> for ClientError<E> {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Kernel(error) => ClientError::Kernel(error),
            CallError::Server(errno) => ClientError::from_errno(errno),
        }
    }
}

/// The untyped form, for code written against [`crate::call`]: an error
/// reply keeps its number, a reply of the wrong shape reads as `BAD_SIZES`.
impl<E: InterfaceError> From<ClientError<E>> for CallError {
    fn from(error: ClientError<E>) -> Self {
        match error {
            ClientError::Kernel(error) => CallError::Kernel(error),
            ClientError::BadReply => CallError::Kernel(Error::BadSizes),
            other => CallError::Server(other.errno()),
        }
    }
}

impl<E: InterfaceError> core::fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ClientError::Kernel(error) => write!(f, "kernel error {error}"),
            ClientError::Interface(error) => {
                write!(f, "server error {} ({:#x})", error.name(), error.number())
            }
            ClientError::ServerKernel(error) => write!(f, "server error {error}"),
            ClientError::Unknown(errno) => write!(f, "server error {errno:#x}"),
            ClientError::BadReply => f.write_str("the reply does not have the declared shape"),
        }
    }
}

/// What follows a request's or a reply's header, as declared: whether
/// bytes may follow it, and how many descriptors the message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Bytes may follow the header (any number, the message's room allowing).
    pub bytes: bool,
    /// The fewest descriptor slots.
    pub min_descriptors: u8,
    /// The most descriptor slots.
    pub max_descriptors: u8,
}

impl Shape {
    /// Whether a message whose data after the header is `after_header`
    /// bytes long (`None`: shorter than the header) and which carries
    /// `descriptors` slots has this shape.
    pub fn admits(&self, after_header: Option<usize>, descriptors: u8) -> bool {
        let data = match after_header {
            Some(0) => true,
            Some(_) => self.bytes,
            None => false,
        };
        data && (self.min_descriptors..=self.max_descriptors).contains(&descriptors)
    }
}

/// What a client stub calls through: a descriptor (a client reference to
/// the server's door, or NULL for procman) or a [`Loopback`].
pub trait Transport {
    /// Calls `function` with `message`, as [`crate::call`] does: on success
    /// the message holds the reply.
    fn call(&self, function: Function, message: &mut Message) -> Result<Reply, CallError>;
}

impl Transport for Descriptor {
    fn call(&self, function: Function, message: &mut Message) -> Result<Reply, CallError> {
        call(*self, function, message)
    }
}

/// A successful reply, as the interface declares it. Dropping it closes
/// the descriptors that were not taken.
#[derive(Debug)]
pub struct Replied<R> {
    /// msgRetVal.
    pub value: u32,
    /// The reply's header (the payload's first bytes).
    pub header: R,
    message: Message,
}

impl<R: FromBytes> Replied<R> {
    /// Checks the reply in `message` (msgRetVal `value`) against `shape`.
    fn adopt<E>(mut message: Message, value: u32, shape: Shape) -> Result<Self, ClientError<E>> {
        let payload = message.payload();
        let header = R::read_from_prefix(payload).ok().map(|(header, _)| header);
        let after = payload.len().checked_sub(size_of::<R>());
        let data_present = usize::from(message.data_size()) >= REPLY_PAYLOAD_OFFSET;
        match header {
            Some(header) if data_present && shape.admits(after, message.descriptor_count()) => {
                Ok(Replied {
                    value,
                    header,
                    message,
                })
            }
            _ => {
                message.discard();
                Err(ClientError::BadReply)
            }
        }
    }
}

impl<R> Replied<R> {
    /// The bytes after the header.
    pub fn bytes(&self) -> &[u8] {
        self.message
            .payload()
            .get(size_of::<R>()..)
            .unwrap_or_default()
    }

    /// The number of descriptors the reply carries.
    pub fn descriptor_count(&self) -> usize {
        usize::from(self.message.descriptor_count())
    }

    /// Slot `index` as it arrived: this process's new descriptor and the
    /// rights granted.
    pub fn descriptor_slot(&self, index: usize) -> Option<DescriptorSlot> {
        self.message.descriptor_slot(index)
    }

    /// Takes the descriptor that arrived in slot `index` (once).
    pub fn take_descriptor(&mut self, index: usize) -> Option<OwnedDescriptor> {
        self.message.take_descriptor(index)
    }
}

impl<R> Drop for Replied<R> {
    fn drop(&mut self) {
        self.message.discard();
    }
}

/// The client side of one operation (what a generated stub method calls):
/// the request is `header`, `bytes`, then `descriptors`; the reply must
/// have header `R` and `shape`.
pub fn invoke<R, E, T, Q>(
    transport: &T,
    function: Function,
    header: &Q,
    bytes: &[u8],
    descriptors: &[DescriptorSlot],
    shape: Shape,
) -> Result<Replied<R>, ClientError<E>>
where
    R: FromBytes,
    E: InterfaceError,
    T: Transport + ?Sized,
    Q: IntoBytes + Immutable + ?Sized,
{
    let mut message = Message::new();
    message
        .push(header)
        .and_then(|message| message.push_data(bytes))
        .map_err(|_| ClientError::Kernel(Error::BadSizes))?;
    for slot in descriptors {
        message
            .push_descriptor(*slot)
            .map_err(|_| ClientError::Kernel(Error::BadSizes))?;
    }
    let reply = transport.call(function, &mut message)?;
    Replied::adopt(message, reply.ret_val, shape)
}

/// The descriptors that arrived with a request. Those not taken are closed
/// once the method returns.
#[derive(Debug)]
pub struct Arrived<'a> {
    slots: &'a mut [u8],
}

impl Arrived<'_> {
    /// How many arrived.
    pub fn len(&self) -> usize {
        self.slots.len() / usize::from(SLOT_SIZE)
    }

    /// Whether none did.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Slot `index`: this process's new descriptor (0 once taken) and the
    /// rights granted.
    pub fn slot(&self, index: usize) -> Option<DescriptorSlot> {
        let at = index.checked_mul(usize::from(SLOT_SIZE))?;
        let (slot, _) = DescriptorSlot::read_from_prefix(self.slots.get(at..)?).ok()?;
        Some(slot)
    }

    /// Takes ownership of the descriptor in slot `index` (once).
    pub fn take(&mut self, index: usize) -> Option<OwnedDescriptor> {
        let slot = self.slot(index)?;
        let at = index * usize::from(SLOT_SIZE);
        // The slot forgets the descriptor, so it is not closed after the method.
        self.slots.get_mut(at..at + 4)?.fill(0);
        OwnedDescriptor::from_raw(Descriptor(slot.descriptor))
    }
}

/// A call being answered, as a server method sees it: the caller's cookie
/// and the reply being built (its header is what the method returns).
#[derive(Debug)]
pub struct Call<'a> {
    cookie: u64,
    reply_cookie: u64,
    value: u32,
    shape: Shape,
    reply: Message<&'a mut [u8]>,
}

impl Call<'_> {
    /// The cookie stored in the caller's reference (a fresh reference's is
    /// 0; procman's callers carry their process id).
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// Sets the cookie the reply stores into the caller's reference (it is
    /// stored with error replies too).
    pub fn set_cookie(&mut self, cookie: u64) {
        self.reply_cookie = cookie;
    }

    /// Sets msgRetVal (0 unless set). `u32::MAX` would read as an error
    /// reply.
    pub fn set_value(&mut self, value: u32) {
        self.value = value;
    }

    /// The bytes the reply still has room for (the caller's buffer less
    /// what the reply holds).
    pub fn room(&self) -> usize {
        usize::from(self.reply.capacity().saturating_sub(self.reply.extent()))
    }

    /// Appends bytes after the reply's header; `Full` when they do not fit
    /// or the operation's reply declares no bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), MessageError> {
        if !self.shape.bytes {
            return Err(MessageError::Full);
        }
        self.reply.push_data(bytes).map(drop)
    }

    /// Moves `descriptor` to the caller with `rights`; when this fails (no
    /// room, or more descriptors than the reply declares) it is closed.
    pub fn push_move(
        &mut self,
        descriptor: OwnedDescriptor,
        rights: Rights,
    ) -> Result<(), MessageError> {
        self.check_descriptor_room()?;
        self.reply.push_move(descriptor, rights).map(drop)
    }

    /// Copies `descriptor` to the caller with `rights`.
    pub fn push_copy(
        &mut self,
        descriptor: Descriptor,
        rights: Rights,
    ) -> Result<(), MessageError> {
        self.check_descriptor_room()?;
        self.reply.push_copy(descriptor, rights).map(drop)
    }

    fn check_descriptor_room(&self) -> Result<(), MessageError> {
        if self.reply.descriptor_count() >= self.shape.max_descriptors {
            return Err(MessageError::TooManyDescriptors);
        }
        Ok(())
    }
}

/// The parts of a request with header `H` and `shape`, or `None` when its
/// data or descriptor count does not match.
fn decode<'r, H: FromBytes>(
    request: &'r mut Request<'_>,
    shape: Shape,
) -> Option<(H, &'r [u8], Arrived<'r>)> {
    let message = request.message_mut();
    let data_size = message.data_size();
    let count = message.descriptor_count();
    let after = usize::from(data_size).checked_sub(size_of::<H>());
    if !shape.admits(after, count) {
        return None;
    }
    let slots_at = if count == 0 {
        data_size
    } else {
        descriptor_offset(data_size)
    };
    let slot_bytes = usize::from(count) * usize::from(SLOT_SIZE);
    let (data, slots) = message
        .buffer_mut()
        .split_at_mut_checked(usize::from(slots_at))?;
    let data: &[u8] = data.get(..usize::from(data_size))?;
    let (header, bytes) = H::read_from_prefix(data).ok()?;
    let slots = slots.get_mut(..slot_bytes)?;
    Some((header, bytes, Arrived { slots }))
}

/// The server side of one operation (what the generated `dispatch` calls):
/// checks the request against header `H` and `request_shape` (else
/// `BAD_REQUEST`), reserves the reply's header `R` (else
/// `REPLY_DOES_NOT_FIT`), runs `method`, and writes its header, or answers
/// with its refusal.
pub fn dispatch<H, R, E, F>(
    request: &mut Request<'_>,
    reply: &mut Message<&mut [u8]>,
    request_shape: Shape,
    reply_shape: Shape,
    method: F,
) -> Response
where
    H: FromBytes,
    R: IntoBytes + Immutable,
    E: InterfaceError,
    F: FnOnce(&mut Call<'_>, H, &[u8], &mut Arrived<'_>) -> Result<R, Refusal<E>>,
{
    let cookie = request.cookie();
    let Some((header, bytes, mut arrived)) = decode::<H>(request, request_shape) else {
        return Response::Error(E::BAD_REQUEST.number());
    };
    // The method builds the reply after the header it will return.
    let mut message = core::mem::replace(reply, Message::over(Default::default()));
    let reserved = u16::try_from(size_of::<R>())
        .ok()
        .and_then(|size| message.set_data_size(size).ok());
    if reserved.is_none() {
        *reply = message;
        return Response::Error(E::REPLY_DOES_NOT_FIT.number());
    }
    let mut call = Call {
        cookie,
        reply_cookie: cookie,
        value: 0,
        shape: reply_shape,
        reply: message,
    };
    let result = method(&mut call, header, bytes, &mut arrived);
    let Call {
        reply_cookie,
        value,
        reply: mut message,
        ..
    } = call;
    request.set_cookie(reply_cookie);
    let response = match result {
        Ok(header) => match header.write_to_prefix(message.data_mut()) {
            Ok(()) => Response::Reply(value),
            Err(_) => Response::Error(E::REPLY_DOES_NOT_FIT.number()),
        },
        Err(refusal) => Response::Error(refusal.number()),
    };
    *reply = message;
    response
}

/// The default answer to a function number an interface does not declare.
pub fn unknown_function<E: InterfaceError>() -> Response {
    Response::Error(E::UNKNOWN_FUNCTION.number())
}

/// A [`Transport`] that runs `server` in this process, the way [`crate::serve`]
/// answers a call (the same reply convention, a 4095-byte buffer on both
/// sides, the cookie kept between calls), with no kernel in between: for
/// host tests of a client stub against its server. Descriptors travel as
/// numbers, unchanged, as if the server were this process.
#[derive(Debug)]
pub struct Loopback<S> {
    server: RefCell<S>,
    cookie: Cell<u64>,
}

impl<S> Loopback<S> {
    /// A loopback to `server`; the first call's cookie is 0.
    pub fn new(server: S) -> Self {
        Loopback {
            server: RefCell::new(server),
            cookie: Cell::new(0),
        }
    }

    /// The cookie the last reply stored.
    pub fn cookie(&self) -> u64 {
        self.cookie.get()
    }
}

impl<S: Server> Transport for Loopback<S> {
    fn call(&self, function: Function, message: &mut Message) -> Result<Reply, CallError> {
        // A server calling itself would wait for itself forever.
        let mut server = self
            .server
            .try_borrow_mut()
            .map_err(|_| CallError::Kernel(Error::WouldBlock))?;
        let mut request = MessageBuffer::new();
        let mut reply = MessageBuffer::new();
        let extent = usize::from(message.extent());
        request.0[..extent].copy_from_slice(&message.buffer()[..extent]);
        let received = Received {
            function,
            cookie: self.cookie.get(),
            sizes: message.sizes(),
        };
        let (cookie, sizes) = answer(&mut *server, received, &mut request.0, &mut reply.0);
        self.cookie.set(cookie);
        let reply_extent = usize::from(message_extent(sizes.data_size(), sizes.descriptor_count()));
        message.buffer_mut()[..reply_extent].copy_from_slice(&reply.0[..reply_extent]);
        let word = |at: usize| {
            u32::read_from_prefix(
                reply
                    .0
                    .get(at..sizes.data_size().into())
                    .unwrap_or_default(),
            )
            .map_or(0, |(word, _)| word)
        };
        let arrived = MessageSizes::new()
            .with_data_size(sizes.data_size())
            .with_descriptor_count(sizes.descriptor_count());
        message
            .set_arrived(arrived)
            .map_err(|_| CallError::Kernel(Error::BadSizes))?;
        let reply = Reply {
            ret_val: word(0),
            errno: word(4),
            sizes: arrived,
        };
        if reply.is_error() {
            message.discard();
            return Err(CallError::Server(reply.errno));
        }
        Ok(reply)
    }
}

/// Declares a server interface: its client stub and its server trait.
///
/// ```ignore
/// userlib::interface! {
///     /// Doc of the client stub (a struct).
///     pub client EchoClient;
///     /// Doc of the server trait.
///     pub server EchoServer;
///     error EchoError;
///
///     /// Doc of the operation (on the stub's method and the trait's).
///     fn echo(ECHO) request(bytes) reply(bytes);
///     /// Fixed headers, descriptors: exactly N (`descriptors: 1`) or a
///     /// range (`descriptors: 0..=255`).
///     fn open(OPEN) request(header: NameRequest, bytes) reply(descriptors: 1);
/// }
/// ```
///
/// Each operation is `fn NAME(FUNCTION) request(...) reply(...);` where
/// FUNCTION is an `abi::Function` expression and each side lists, in this
/// order and each optional: `header: T` (a zerocopy `FromBytes + IntoBytes
/// + Immutable` type), `bytes` (bytes follow the header), `descriptors: N`
/// or `descriptors: MIN..=MAX`. Nothing listed: an empty message (a reply
/// is then just msgRetVal and msgErrno). The error type implements
/// [`interface::InterfaceError`](crate::interface::InterfaceError).
///
/// The stub `EchoClient<T = Descriptor>` is made with `EchoClient::new(door)`
/// (or `over(transport)`, e.g. a [`Loopback`](crate::interface::Loopback));
/// its method for `open` above is `open(&self, header: NameRequest, bytes:
/// &[u8]) -> Result<Replied<()>, ClientError<E>>` (a request's descriptors are
/// a `descriptors: &[DescriptorSlot]` argument). The trait's method is
/// `open(&mut self, call: &mut Call<'_>, header: NameRequest, bytes: &[u8])
/// -> Result<(), Refusal<E>>` (a request's descriptors are a `descriptors:
/// &mut Arrived<'_>` argument); the reply's header is what it returns,
/// its bytes, descriptors and msgRetVal go through `call`. Operations must
/// not be named `new`, `over`, `transport`, `dispatch`, `other_function`,
/// `server` or `serve`.
#[macro_export]
macro_rules! interface {
    (
        $(#[$client_meta:meta])*
        $client_vis:vis client $client:ident;
        $(#[$server_meta:meta])*
        $server_vis:vis server $server:ident;
        error $error:ty;
        $(
            $(#[$op_meta:meta])*
            fn $method:ident($function:expr) request($($request:tt)*) reply($($reply:tt)*);
        )*
    ) => {
        $(#[$client_meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $client_vis struct $client<T = $crate::abi::Descriptor> {
            transport: T,
        }

        impl $client<$crate::abi::Descriptor> {
            /// A client of the server behind `target`: a client reference
            /// to its door (NULL for procman).
            pub const fn new(target: $crate::abi::Descriptor) -> Self {
                Self { transport: target }
            }
        }

        impl<T> $client<T> {
            /// A client whose calls go through `transport`.
            pub const fn over(transport: T) -> Self {
                Self { transport }
            }

            /// What the calls go through.
            pub const fn transport(&self) -> &T {
                &self.transport
            }
        }

        impl<T: $crate::interface::Transport> $client<T> {
            $(
                $crate::__interface! {
                    @parse client [$(#[$op_meta])* $method ($function) ($error)]
                    ($($request)*) ($($reply)*)
                }
            )*
        }

        $(#[$server_meta])*
        $server_vis trait $server {
            $(
                $crate::__interface! {
                    @parse server [$(#[$op_meta])* $method ($function) ($error)]
                    ($($request)*) ($($reply)*)
                }
            )*

            /// Answers a call whose function number the interface does not
            /// declare: by default an `UNKNOWN_FUNCTION` error reply.
            fn other_function(
                &mut self,
                request: &mut $crate::Request<'_>,
                reply: &mut $crate::Message<&mut [u8]>,
            ) -> $crate::Response {
                let _ = (request, reply);
                $crate::interface::unknown_function::<$error>()
            }

            /// Answers one call: finds the operation by its function
            /// number, checks the request's shape (`BAD_REQUEST` if it does
            /// not match), calls its method and encodes the reply. Not
            /// meant to be overridden.
            fn dispatch(
                &mut self,
                request: &mut $crate::Request<'_>,
                reply: &mut $crate::Message<&mut [u8]>,
            ) -> $crate::Response {
                let function = request.function();
                $(
                    if function == $function {
                        return $crate::__interface! {
                            @parse dispatch [$method ($error) self request reply]
                            ($($request)*) ($($reply)*)
                        };
                    }
                )*
                self.other_function(request, reply)
            }

            /// This server as a `userlib::Server` (for `userlib::serve`, or
            /// a `userlib::interface::Loopback`).
            fn server(&mut self) -> impl $crate::Server + '_
            where
                Self: Sized,
            {
                move |request: &mut $crate::Request<'_>, reply: &mut $crate::Message<&mut [u8]>| {
                    self.dispatch(request, reply)
                }
            }

            /// Serves the door whose owner reference is `door` with this
            /// server, forever (`userlib::serve`); returns the error
            /// that ended the loop.
            fn serve(&mut self, door: &$crate::OwnedDescriptor) -> $crate::abi::Error
            where
                Self: Sized,
            {
                $crate::serve(door, &mut self.server())
            }
        }
    };
}

/// Declares an interface's error type: a `#[repr(u32)]` enum, each error
/// with its number (from `abi::error::FIRST_SERVER_ERROR`) and stable
/// name, and its [`InterfaceError`] implementation naming which errors
/// the generated dispatch answers with.
///
/// ```ignore
/// userlib::interface_error! {
///     /// Doc of the enum.
///     pub enum EchoError {
///         /// Doc of each error.
///         UnknownFunction = FIRST_SERVER_ERROR => "ECHO_UNKNOWN_FUNCTION",
///         ReplyDoesNotFit = FIRST_SERVER_ERROR + 1 => "ECHO_REPLY_DOES_NOT_FIT",
///         BadRequest = FIRST_SERVER_ERROR + 2 => "ECHO_BAD_REQUEST",
///     }
///     unknown_function: UnknownFunction,
///     reply_does_not_fit: ReplyDoesNotFit,
///     bad_request: BadRequest,
/// }
/// ```
#[macro_export]
macro_rules! interface_error {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $number:expr => $label:literal,
            )+
        }
        unknown_function: $unknown:ident,
        reply_does_not_fit: $no_room:ident,
        bad_request: $bad:ident $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant = $number,
            )+
        }

        impl $crate::interface::InterfaceError for $name {
            const BAD_REQUEST: Self = $name::$bad;
            const UNKNOWN_FUNCTION: Self = $name::$unknown;
            const REPLY_DOES_NOT_FIT: Self = $name::$no_room;

            fn number(self) -> u32 {
                self as u32
            }

            fn from_number(number: u32) -> Option<Self> {
                [$($name::$variant),+]
                    .into_iter()
                    .find(|error| *error as u32 == number)
            }

            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }
    };
}

/// The parts of [`interface!`]: normalizes each operation's request and
/// reply lists into `[header: T] [bytes] [descriptors: MIN MAX]` (each
/// bracket possibly empty), then emits the stub method, the trait method or
/// the dispatch arm.
#[doc(hidden)]
#[macro_export]
macro_rules! __interface {
    (@parse $mode:ident $context:tt ($($request:tt)*) ($($reply:tt)*)) => {
        $crate::__interface! { @request $mode $context [] [] [] ($($request)*) ($($reply)*) }
    };

    // The request list.
    (@request $mode:ident $context:tt [] [] [] (header: $header:ty $(, $($rest:tt)*)?) $reply:tt) => {
        $crate::__interface! { @request $mode $context [header: $header] [] [] ($($($rest)*)?) $reply }
    };
    (@request $mode:ident $context:tt $h:tt [] [] (bytes $(, $($rest:tt)*)?) $reply:tt) => {
        $crate::__interface! { @request $mode $context $h [bytes] [] ($($($rest)*)?) $reply }
    };
    (@request $mode:ident $context:tt $h:tt $b:tt [] (descriptors: $min:literal ..= $max:literal $(,)?) $reply:tt) => {
        $crate::__interface! { @request $mode $context $h $b [descriptors: $min $max] () $reply }
    };
    (@request $mode:ident $context:tt $h:tt $b:tt [] (descriptors: $count:literal $(,)?) $reply:tt) => {
        $crate::__interface! { @request $mode $context $h $b [descriptors: $count $count] () $reply }
    };
    (@request $mode:ident $context:tt $h:tt $b:tt $d:tt () ($($reply:tt)*)) => {
        $crate::__interface! { @reply $mode $context [$h $b $d] [] [] [] ($($reply)*) }
    };

    // The reply list.
    (@reply $mode:ident $context:tt $request:tt [] [] [] (header: $header:ty $(, $($rest:tt)*)?)) => {
        $crate::__interface! { @reply $mode $context $request [header: $header] [] [] ($($($rest)*)?) }
    };
    (@reply $mode:ident $context:tt $request:tt $h:tt [] [] (bytes $(, $($rest:tt)*)?)) => {
        $crate::__interface! { @reply $mode $context $request $h [bytes] [] ($($($rest)*)?) }
    };
    (@reply $mode:ident $context:tt $request:tt $h:tt $b:tt [] (descriptors: $min:literal ..= $max:literal $(,)?)) => {
        $crate::__interface! { @reply $mode $context $request $h $b [descriptors: $min $max] () }
    };
    (@reply $mode:ident $context:tt $request:tt $h:tt $b:tt [] (descriptors: $count:literal $(,)?)) => {
        $crate::__interface! { @reply $mode $context $request $h $b [descriptors: $count $count] () }
    };
    (@reply $mode:ident $context:tt $request:tt $h:tt $b:tt $d:tt ()) => {
        $crate::__interface! { @$mode $context $request [$h $b $d] }
    };

    // The client stub's method.
    (@client [$(#[$meta:meta])* $method:ident ($function:expr) ($error:ty)]
        [[$($qk:ident: $qh:ty)?] [$($qb:ident)?] [$($qd:ident: $qmin:literal $qmax:literal)?]]
        [[$($pk:ident: $ph:ty)?] [$($pb:ident)?] [$($pd:ident: $pmin:literal $pmax:literal)?]]
    ) => {
        $(#[$meta])*
        pub fn $method(
            &self,
            $($qk: $qh,)?
            $($qb: &[u8],)?
            $($qd: &[$crate::abi::DescriptorSlot],)?
        ) -> ::core::result::Result<
            $crate::interface::Replied<$crate::__interface!(@type $($ph)?)>,
            $crate::interface::ClientError<$error>,
        > {
            $crate::interface::invoke(
                &self.transport,
                $function,
                $crate::__interface!(@or [&()] $([&$qk])?),
                $crate::__interface!(@or [&[]] $([$qb])?),
                $crate::__interface!(@or [&[]] $([$qd])?),
                $crate::__interface!(@shape [$($pb)?] [$($pmin $pmax)?]),
            )
        }
    };

    // The server trait's method.
    (@server [$(#[$meta:meta])* $method:ident ($function:expr) ($error:ty)]
        [[$($qk:ident: $qh:ty)?] [$($qb:ident)?] [$($qd:ident: $qmin:literal $qmax:literal)?]]
        [[$($pk:ident: $ph:ty)?] $pb:tt $pd:tt]
    ) => {
        $(#[$meta])*
        fn $method(
            &mut self,
            call: &mut $crate::interface::Call<'_>,
            $($qk: $qh,)?
            $($qb: &[u8],)?
            $($qd: &mut $crate::interface::Arrived<'_>,)?
        ) -> ::core::result::Result<
            $crate::__interface!(@type $($ph)?),
            $crate::interface::Refusal<$error>,
        >;
    };

    // The dispatch of one operation (an expression).
    (@dispatch [$method:ident ($error:ty) $this:ident $request:ident $reply:ident]
        [[$($qk:ident: $qh:ty)?] [$($qb:ident)?] [$($qd:ident: $qmin:literal $qmax:literal)?]]
        [[$($pk:ident: $ph:ty)?] [$($pb:ident)?] [$($pd:ident: $pmin:literal $pmax:literal)?]]
    ) => {
        $crate::interface::dispatch::<
            $crate::__interface!(@type $($qh)?),
            $crate::__interface!(@type $($ph)?),
            $error,
            _,
        >(
            $request,
            $reply,
            $crate::__interface!(@shape [$($qb)?] [$($qmin $qmax)?]),
            $crate::__interface!(@shape [$($pb)?] [$($pmin $pmax)?]),
            |call,
             $crate::__interface!(@or [_] $([$qk])?),
             $crate::__interface!(@or [_] $([$qb])?),
             $crate::__interface!(@or [_] $([$qd])?)| {
                $this.$method(call, $($qk,)? $($qb,)? $($qd,)?)
            },
        )
    };

    // Helpers.
    (@type) => { () };
    (@type $t:ty) => { $t };
    (@or [$($default:tt)*]) => { $($default)* };
    (@or [$($default:tt)*] [$($given:tt)*]) => { $($given)* };
    (@flag) => { false };
    (@flag $present:ident) => { true };
    (@shape [$($bytes:ident)?] [$($min:literal $max:literal)?]) => {
        $crate::interface::Shape {
            bytes: $crate::__interface!(@flag $($bytes)?),
            min_descriptors: $crate::__interface!(@or [0] $([$min])?),
            max_descriptors: $crate::__interface!(@or [0] $([$max])?),
        }
    };
}

#[cfg(test)]
mod tests;
