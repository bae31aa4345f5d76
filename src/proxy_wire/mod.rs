//! The proxy protocols both ends speak, and a client's way through a proxy: SOCKS5
//! (RFC 1928, with RFC 1929's username and password) in [`socks5`], HTTP/1.1 `CONNECT` in
//! [`http_connect`], plain `http://` requests passed on in [`http_forward`], the `--proxy URL`
//! every client takes in [`url`], and [`dial()`], which opens a TCP connection to a target
//! through a proxy.
//!
//! The server side (`taojie serve proxy`) parses requests with the same functions its clients
//! encode them with; the parsers take bytes as they arrive, say when they need more, and
//! bound every length before anything is kept.
mod addr;
pub mod dial;
pub mod http_connect;
pub mod http_forward;
pub mod socks5;
pub mod url;

pub use addr::{Host, parse_authority};
pub use dial::{connect_tcp, dial};
pub use url::{ProxyScheme, ProxyUrl};

/// What a parser made of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// More bytes are needed; nothing was consumed.
    Incomplete,
    /// A whole message, and how many bytes it took.
    Done(T, usize),
}
