//! Pagers (ABI.md §6.4): a server that supplies the pages of special
//! memory objects (`kernel::pager_create`). Implement [`Pager`] and serve
//! the door with [`PagerServer`] through [`crate::serve`]: each
//! PAGE_REQUEST the kernel delivers becomes a call of [`Pager::page`], and
//! the [`Supply`] it returns becomes the REPLY (DATA, FRAME, FORWARD, or an
//! error reply that ends the faulting process).
//!
//! It must never build a supply by hand: the reply's layout comes from
//! `abi::kcall::PageSupply`. Calls of any other function on the door are
//! refused with INVALID_FUNCTION (a pager's door speaks no other protocol).

use abi::kcall::{PAGE_SUPPLY_DATA, PageRequest, PageSupply};
use abi::{Descriptor, Error, KernelFunction};

use crate::message::Message;
use crate::server::{Request, Response, Server};

/// How a pager answers a page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Supply<'a> {
    /// These bytes start the page (at most `PAGE_SUPPLY_DATA`; the rest of
    /// the page is zero).
    Data(&'a [u8]),
    /// The frame of page `offset` (bytes, page-aligned) of the pager's
    /// memory object `object`, shared copy-on-write.
    Frame {
        /// The pager's memory object (MAP_READ needed).
        object: Descriptor,
        /// The page's byte offset in it.
        offset: u64,
    },
    /// The request goes on to the pager behind this door (SEND needed).
    Forward(Descriptor),
    /// An error reply with this (non-zero) number: the faulting process ends.
    Fail(u32),
}

/// A pager: supplies one page at a time.
pub trait Pager {
    /// The page `request` asks for (`request.cookie` names the object,
    /// `request.offset` the page).
    fn page(&mut self, request: &PageRequest) -> Supply<'_>;
}

/// Serves a [`Pager`] on its door (hand it to [`crate::serve`]).
#[derive(Debug)]
pub struct PagerServer<P>(pub P);

impl<P: Pager> Server for PagerServer<P> {
    fn handle(&mut self, request: &mut Request<'_>, reply: &mut Message<&mut [u8]>) -> Response {
        if request.function() != KernelFunction::PageRequest.function() {
            return Response::Error(Error::InvalidFunction as u32);
        }
        let Some(page) = request.read::<PageRequest>(0) else {
            return Response::Error(Error::BadSizes as u32);
        };
        let (header, data) = match self.0.page(&page) {
            Supply::Data(bytes) => (
                PageSupply::data(),
                bytes.get(..PAGE_SUPPLY_DATA).unwrap_or(bytes),
            ),
            Supply::Frame { object, offset } => (PageSupply::frame(object, offset), &[][..]),
            Supply::Forward(door) => (PageSupply::forward(door), &[][..]),
            Supply::Fail(errno) => return Response::Error(errno.max(1)),
        };
        match reply.push(&header).and_then(|reply| reply.push_data(data)) {
            Ok(_) => Response::Reply(0),
            Err(_) => Response::Error(Error::BadSizes as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::Received;
    use abi::MessageSizes;
    use abi::function::Function;
    use abi::kcall::page_supply;
    use zerocopy::{FromBytes, IntoBytes};

    /// Answers page 0 with data, page 1 with a frame, page 2 by
    /// forwarding, anything else with an error.
    struct Test {
        data: [u8; 5000],
    }

    impl Pager for Test {
        fn page(&mut self, request: &PageRequest) -> Supply<'_> {
            match request.offset / abi::PAGE_BYTES {
                0 => Supply::Data(&self.data),
                1 => Supply::Frame {
                    object: Descriptor(7),
                    offset: request.cookie,
                },
                2 => Supply::Forward(Descriptor(9)),
                _ => Supply::Fail(0),
            }
        }
    }

    /// Handles a request of `function` for page `page`: the response and
    /// the reply's payload.
    fn handle(function: Function, page: u64) -> (Response, alloc::vec::Vec<u8>) {
        let request = PageRequest::new(
            0x3000,
            page * abi::PAGE_BYTES,
            abi::kcall::protection::READ,
            0,
        );
        let mut buffer = [0u8; 4095];
        buffer[..24].copy_from_slice(request.as_bytes());
        let received = Received {
            function,
            cookie: request.cookie,
            sizes: MessageSizes::new().with_total_size(4095).with_data_size(24),
        };
        let mut request = Request::new(received, &mut buffer);
        let mut room = [0u8; 4095 - 8];
        let mut reply = Message::over(&mut room[..]);
        let mut server = PagerServer(Test { data: [0xAB; 5000] });
        let response = server.handle(&mut request, &mut reply);
        (response, reply.data().to_vec())
    }

    fn header(payload: &[u8]) -> PageSupply {
        PageSupply::read_from_bytes(&payload[..16]).unwrap_or_default()
    }

    #[test]
    fn each_supply_becomes_its_reply() {
        let page = KernelFunction::PageRequest.function();
        let (response, payload) = handle(page, 0);
        assert_eq!(response, Response::Reply(0));
        assert_eq!(header(&payload), PageSupply::data());
        assert_eq!(
            payload.len(),
            16 + PAGE_SUPPLY_DATA,
            "data clipped to what fits"
        );
        assert!(payload[16..].iter().all(|b| *b == 0xAB));
        let (response, payload) = handle(page, 1);
        assert_eq!(response, Response::Reply(0));
        assert_eq!(header(&payload), PageSupply::frame(Descriptor(7), 0x3000));
        assert_eq!(payload.len(), 16);
        let (_, payload) = handle(page, 2);
        assert_eq!(header(&payload).how, page_supply::FORWARD);
        assert_eq!(header(&payload).descriptor, 9);
        // A failure is never an error number 0 (which would read as a supply).
        assert_eq!(handle(page, 3).0, Response::Error(1));
    }

    #[test]
    fn other_functions_are_refused() {
        let (response, payload) = handle(Function(0x8000), 0);
        assert_eq!(response, Response::Error(Error::InvalidFunction as u32));
        assert!(payload.is_empty());
    }
}
