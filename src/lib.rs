//! taojie (套接字, "socket"): one toolkit for everyday socket work — the `taojie` binary and
//! the library beneath it, grown out of a classic socket-programming course.
//!
//! # Building a server on it
//!
//! [`server`] is the grown-up form of Python's `socketserver`, which the course teaches: bind
//! with [`server::listen_tcp`] (or [`server::bind_unix`]), say where you listen with
//! [`server::announce`], and hand [`server::serve_stream`] the listener, its [`server::Limits`],
//! an async handler of one [`server::Conn`] and a shutdown future. Every connection runs in a
//! task of its own; the framework caps how many run at once, closes idle ones, backs off on
//! accept errors such as EMFILE, and on shutdown stops accepting and lets open connections
//! finish within a grace period. [`server::serve_datagram`] is its counterpart for UDP services
//! that answer each datagram.
//!
//! ```no_run
//! use taojie::server::{self, Conn, Limits};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! /// One message in, the same upper-cased out: the seeds' `socketserver` handler.
//! async fn upper(mut conn: Conn) -> std::io::Result<()> {
//!     let mut buf = [0u8; 1024];
//!     let n = conn.read(&mut buf).await?;
//!     conn.write_all(&buf[..n].to_ascii_uppercase()).await
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let listener = server::listen_tcp("127.0.0.1:0").await?;
//!     server::announce("upper", listener.proto(), &listener.local_display()); // upper tcp 127.0.0.1:PORT
//!     let stop = server::shutdown::on_signal()?; // Ctrl-C: stop accepting, let clients finish
//!     server::serve_stream("upper", listener, Limits::default(), upper, stop.cancelled_owned()).await;
//!     Ok(())
//! }
//! ```
//!
//! The crate's `examples/` hold whole programs written this way: `upper` (that server, as the
//! seed has it) and `kv` (a line-based key-value store that its clients share), each run with
//! `cargo run --example NAME -- 127.0.0.1:0`.
//!
//! # Starting a service without the command line
//!
//! Each service takes plain options, so a program runs one as `taojie serve` does:
//!
//! ```no_run
//! use taojie::{echo, server};
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let options = echo::Options {
//!         listen: Some("127.0.0.1:0".into()), // prints `echo tcp 127.0.0.1:PORT`
//!         upper: true,
//!         ..Default::default()
//!     };
//!     echo::serve(options, server::shutdown::on_signal()?).await
//! }
//! ```
//!
//! # The modules, floor by floor
//!
//! The modules stand on floors, and a module names only modules on the floors below its
//! own: `main` → [`cli`] → [`serve`] → the services → the shared machinery → the ground.
//! The services never name each other, nor the command line: what two of them share moves
//! down a floor, into a module of its own, and each takes plain options (`echo::Options`,
//! `exec::ServeOptions`, ...) that the command line and `serve` build from their flags, so a
//! program can start any of them without a command line. Nothing closes a loop, between
//! modules or between the files of one. `tests/layers/main.rs` reads every import and fails on one
//! that breaks this rule, naming its file and line.
//!
//! **The command line.** [`cli`]: every command's flags (the doc comments are the help), the
//! dispatch, the man pages and completion scripts made from the same definitions.
//!
//! **Serving.** [`serve`]: which services `taojie serve` runs and their flags, every service
//! at once with no configuration, `serve --config` (the TOML file's keys are the same flags,
//! checked by the same parser; SIGHUP reloads it), and the Prometheus endpoint.
//!
//! **The services**, one module each, server and client:
//!
//! - [`echo`]: echo (RFC 862) over TCP, UDP and Unix sockets, plain or upper-casing.
//! - [`time`]: the seeds' UDP strftime service, daytime (RFC 867), SNTP (RFC 4330), and their
//!   client.
//! - [`netcat`]: `taojie connect` and `taojie listen` over TCP, UDP and Unix sockets, plain,
//!   TLS or taojie's encrypted channel.
//! - [`forward`]: `taojie forward`, a port relayed to another address for many clients (TCP,
//!   UDP sessions, Unix sockets), and the encrypted tunnels (TLS, Noise) on either side.
//! - [`exec`]: remote command execution, authenticated and streamed, and the seeds' protocol.
//! - [`files`]: verified, resumable, atomic uploads and downloads, and the seeds' upload.
//! - [`chat`]: a TCP line broker with names and rooms, a UDP hub, a page for browsers, and the
//!   terminal client.
//! - [`msg`]: a member of an IP Messenger / Feiq / iptux LAN on UDP 2425.
//! - [`http`]: an HTTP/1.1 and HTTPS client, and the seeds' request on a raw socket.
//! - [`ipcalc`]: addresses, masks and subnets, with the answers of Python's `ipaddress`.
//! - [`wormhole`]: `taojie send` and `taojie receive`, speaking Magic Wormhole, and
//!   `taojie serve relay`, a mailbox server and transit relay.
//! - [`proxy`]: `taojie serve proxy`, SOCKS5 and HTTP CONNECT on one port, with destination
//!   rules and a users file of Argon2id hashes.
//! - [`bench`](mod@bench): an echo load generator that verifies every byte coming back.
//!
//! **The shared machinery**, which services are built from (these may name each other, never
//! in a loop):
//!
//! - [`server`] is the framework above: binding, the accept and datagram loops, limits,
//!   handshake caps, a rate limit per source address for UDP answers, shutdown, and the
//!   refusals it logs.
//! - [`framing`] turns byte streams into messages: the seeds' 4-byte length prefix, taojie's
//!   native frames with their hello, and lines; every length bounded before allocation.
//! - [`auth`] holds shared key files and the seeds' HMAC challenge-response.
//! - [`secure`] is the encrypted channel of every native keyed connection: a Noise handshake
//!   with a shared key or identity keys, then an authenticated record stream; and the key
//!   flags every keyed command shares.
//! - [`web`]: what the services' pages share: their login token, the origin and host checks,
//!   and the security policy on every reply.
//! - [`tty`]: the terminal screen of the chat clients, and making peers' text safe to show.
//! - [`retry`]: the one retry policy (waits and which failures are worth another try).
//! - [`names`]: names that cross the wire (file names), checked and escaped.
//! - [`tls`]: rustls set up the way taojie's users expect: a client that verifies by default
//!   (roots, `--cacert`, host name, `--pin`), server configurations from PEM files or made at
//!   start, and one-line reasons for a failed handshake.
//! - [`transport`]: plain, TLS and Noise streams behind one seam (accepting and dialling), so
//!   a relay never knows which it got.
//! - [`pump`]: the relay between two streams (splice(2) between plain sockets, a buffer copy
//!   otherwise), with half-close and byte counts.
//! - [`proxy_wire`]: the SOCKS5 and HTTP CONNECT messages both ends of a proxy speak, and
//!   `--proxy URL`: a client's connection through a proxy.
//!
//! **The ground**, which names nothing else of the crate: [`log`] (log formats, installing
//! the subscriber, the level in force), [`metrics`] (the counters), [`flags`] (the value
//! parsers every flag and configuration key shares), [`addr`] (what a user typed into socket addresses) and [`sys`] (the few
//! system calls std does not wrap).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod auth;
pub mod bench;
pub mod chat;
pub mod cli;
pub mod echo;
pub mod exec;
pub mod files;
pub mod flags;
pub mod forward;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ipcalc;
pub mod log;
pub mod metrics;
pub mod msg;
pub mod names;
pub mod netcat;
pub mod proxy;
pub mod proxy_wire;
pub mod pump;
pub mod retry;
pub mod secure;
pub mod serve;
pub mod server;
pub mod sys;
pub mod time;
pub mod tls;
pub mod transport;
pub mod tty;
pub mod web;
pub mod wormhole;
