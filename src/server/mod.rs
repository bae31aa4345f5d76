//! The server framework: the grown-up `socketserver` every taojie service runs on.
//!
//! A service binds its sockets with [`bind`], prints where it listens with [`announce`], and
//! hands the bound socket, a handler and a shutdown future to [`serve_stream`] (TCP and Unix
//! streams) or [`serve_datagram`] (UDP; [`Datagrams`] is its receive loop alone, for a
//! service that sends to many peers). The framework caps concurrent connections, closes
//! refused ones at once, backs off on accept errors such as EMFILE, drops idle connections, and
//! on shutdown stops accepting and lets open connections finish up to a grace deadline.
//! Keyed services run each connection's handshake through a [`PreAuth`] guard, which caps
//! handshakes in flight and gives each a deadline. UDP services that answer limit each source
//! address with [`PerSource`], since a source address can be forged. Refused connections are
//! logged through [`refused`], which shows the first few per kind and peer address and then
//! one summary line per window. [`per_core`] spreads each TCP listener over one thread per
//! core (`taojie serve --per-core`).
use std::io::Write;

pub mod bind;
mod conn;
mod datagram;
mod limits;
pub mod per_core;
pub mod per_source;
pub mod preauth;
mod refusals;
pub mod shutdown;
mod stream;

pub use bind::{Listener, bind_tcp, bind_udp, bind_unix, listen_tcp, listen_udp};
pub use conn::{Conn, Peer};
pub use datagram::{DatagramService, Datagrams, serve_datagram};
pub use limits::{DEFAULT_MAX_CONNS, LimitArgs, Limits, LiveLimits};
pub use per_source::PerSource;
pub use preauth::{Caps, LiveCaps, PreAuth, PreAuthArgs};
pub use refusals::{MAX_SUMMARIES, Refusals, SHOWN, Source, Summary, WINDOW, refused, refused_any};
pub use stream::serve_stream;

/// Prints the `SERVICE PROTO ADDRESS` line on standard output (flushed at once), the line
/// scripts and tests wait for to learn where a server listens. The service's metrics exist
/// (at zero) before the line is out, so a scrape right after it lists the service.
pub fn announce(service: &'static str, proto: &str, address: &dyn std::fmt::Display) {
    crate::metrics::service(service);
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop a server; the line is a courtesy to whoever started it.
    let _ = writeln!(out, "{service} {proto} {address}");
    let _ = out.flush();
    crate::log::serving();
}
