//! taojie (套接字, "socket"): one toolkit for everyday socket work.
//!
//! The library is layered the way the data flows: [`addr`] turns what a user typed into socket
//! addresses, [`server`] is the framework every service runs on (binding, connection limits, idle
//! timeouts, graceful shutdown), and each service or client has a module of its own: [`echo`],
//! [`time`], [`netcat`] and the load generator [`bench`](mod@bench). [`cli`] ties them to the command line.
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
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ipcalc;
pub mod msg;
pub mod netcat;
pub mod secure;
pub mod serve;
pub mod server;
pub mod sys;
pub mod time;
