//! File-transfer v1 over a wormhole, as every wormhole client speaks it, and taojie's own
//! extensions between two taojie peers: the offer and answer, the file or the directory's zip
//! through transit, the final ack with the data's SHA-256, and safe landing on disk.
pub mod archive;
pub mod ext;
mod land;
pub mod offer;
pub mod output;
pub mod progress;
mod receive;
mod send;
pub mod stream;

use std::path::PathBuf;

use super::code::Code;
use super::session::SessionOptions;
use super::transit::TransitOptions;
pub use receive::receive;
pub use send::send;

/// Where the two servers are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The mailbox server, `ws://HOST:PORT/v1`.
    pub relay_url: String,
    /// Transit: our relay and whether we listen.
    pub transit: TransitOptions,
}

/// What `taojie send` sends.
#[derive(Debug, Clone)]
pub enum What {
    /// A text message.
    Text(String),
    /// Files and directories.
    Paths(Vec<PathBuf>),
}

/// `taojie send`'s options.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The servers.
    pub endpoints: Endpoints,
    /// What to send.
    pub what: What,
    /// The code to use (default: allocate one).
    pub code: Option<Code>,
    /// Words in an allocated code.
    pub code_length: usize,
    /// Offer taojie's extensions to a taojie peer (false: plain file-transfer v1).
    pub extensions: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// `taojie receive`'s options.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// The servers.
    pub endpoints: Endpoints,
    /// The code.
    pub code: Code,
    /// Accept without asking.
    pub accept: bool,
    /// Where files land.
    pub out_dir: PathBuf,
    /// Replace an existing file of the offered name.
    pub overwrite: bool,
    /// Offer taojie's extensions to a taojie peer (false: plain file-transfer v1).
    pub extensions: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// The wormhole's options for the file-transfer application.
fn session_options(e: &Endpoints, extensions: bool) -> SessionOptions {
    SessionOptions {
        relay_url: e.relay_url.clone(),
        appid: super::APPID.to_string(),
        app_versions: if extensions {
            ext::our_versions()
        } else {
            serde_json::json!({})
        },
    }
}
