//! The flags of `taojie serve time`, and the service's options they make.
use clap::Args;

use crate::server::LimitArgs;
use crate::time;

/// Flags of `taojie serve time`. With no address flag, all three services run on 127.0.0.1
/// at their default ports.
#[derive(Args, Debug, Clone, Default)]
pub struct TimeArgs {
    /// UDP address of the strftime service (a datagram holds a format, the answer the time)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub listen: Option<String>,
    /// TCP address of the daytime service (RFC 867)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub tcp: Option<String>,
    /// UDP address of the SNTP service (RFC 4330)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub sntp: Option<String>,
    /// Stratum the SNTP service claims [default: 10, an unsynchronized local clock]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=15))]
    pub stratum: Option<u8>,
    /// Connection limits (daytime)
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl From<TimeArgs> for time::ServeOptions {
    fn from(a: TimeArgs) -> Self {
        time::ServeOptions {
            listen: a.listen,
            tcp: a.tcp,
            sntp: a.sntp,
            stratum: a.stratum,
            limits: a.limits.to_limits().into(),
        }
    }
}
