//! The flags of `taojie serve SERVICE`, one file per service (the doc comments are the help
//! text, and the configuration file's keys are the same flags), each with the conversion into
//! the plain options the service takes.
mod chat;
mod echo;
mod exec;
mod files;
mod forward;
mod proxy;
mod relay;
mod time;

pub use chat::ChatArgs;
pub use echo::EchoArgs;
pub use exec::ExecArgs;
pub use files::FilesArgs;
pub use forward::ForwardArgs;
pub use proxy::ProxyArgs;
pub use relay::RelayArgs;
pub use time::TimeArgs;
