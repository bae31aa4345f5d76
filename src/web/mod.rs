//! What taojie's pages in a browser share (the chat page, the files page): who may use them
//! ([`access`]: the login token, the page's own origin, loopback host names) and how every
//! answer is sent ([`reply`]: the security policy on each response, plain-text refusals).
//! The services build their own routes on top; nothing here knows a service.
pub mod access;
pub mod announce;
pub mod reply;

pub use access::{Token, host_is_loopback, origin_ok, query_param};
pub use announce::announce;
pub use reply::{plain, secured};
