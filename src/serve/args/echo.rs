//! The flags of `taojie serve echo`, and the service's options they make.
use std::path::PathBuf;

use clap::Args;

use crate::echo;
use crate::server::LimitArgs;

/// Flags of `taojie serve echo`.
#[derive(Args, Debug, Clone, Default)]
pub struct EchoArgs {
    /// TCP address to listen on, e.g. `127.0.0.1:9007` or `[::1]:0`
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub listen: Option<String>,
    /// UDP address to listen on
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub udp: Option<String>,
    /// Unix-domain socket path to listen on
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// Answer in ASCII upper case instead of echoing unchanged
    #[arg(long)]
    pub upper: bool,
    /// Connection limits
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl From<EchoArgs> for echo::Options {
    fn from(a: EchoArgs) -> Self {
        echo::Options {
            listen: a.listen,
            udp: a.udp,
            unix: a.unix,
            upper: a.upper,
            limits: a.limits.to_limits().into(),
        }
    }
}
