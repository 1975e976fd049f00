//! Pagers (ABI.md §6.3): a server that supplies the pages of special
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
