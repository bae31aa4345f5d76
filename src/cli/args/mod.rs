//! The flags of the client commands, one file per service (the doc comments are the help
//! text), each with the conversion into the plain options the service's client takes.
mod bench;
mod chat;
mod exec;
mod files;
mod http;
mod msg;
mod netcat;
pub mod proxy_user;
mod time;
mod wormhole;

pub use bench::BenchArgs;
pub use chat::ChatArgs;
pub use exec::{ExecArgs, hint_dashes};
pub use files::{GetArgs, LsArgs, PutArgs, ShareArgs};
pub use http::HttpArgs;
pub use msg::MsgArgs;
pub use netcat::{ConnectArgs, ListenArgs};
pub use time::TimeArgs;
pub use wormhole::{ReceiveArgs, SendArgs, receive, send};
