//! The flags of `taojie time`, and the client options they make.
use clap::Args;

use crate::time::ClientOptions;

/// Flags of `taojie time`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:
  taojie time 127.0.0.1:9013 '%H:%M:%S'
  taojie time 127.0.0.1:9013 --tcp
  taojie time 127.0.0.1:9123 --sntp --json")]
pub struct TimeArgs {
    /// Server address, HOST:PORT
    #[arg(value_parser = crate::addr::host_port)]
    pub addr: String,
    /// strftime format to ask for (default: the server's, `%Y-%m-%d %X`)
    #[arg(conflicts_with_all = ["tcp", "sntp"])]
    pub format: Option<String>,
    /// Ask a daytime server over TCP (RFC 867)
    #[arg(long, conflicts_with = "sntp")]
    pub tcp: bool,
    /// Ask an SNTP/NTP server; prints the time, the clock offset and the round-trip delay
    #[arg(long)]
    pub sntp: bool,
    /// With --sntp: print one JSON object instead of text
    #[arg(long, requires = "sntp")]
    pub json: bool,
    /// Seconds to wait for an answer (per try; over TCP, for the connect and for the line)
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = crate::flags::positive_secs)]
    pub timeout: f64,
    /// Requests to send again after a timeout (UDP)
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
}

impl From<TimeArgs> for ClientOptions {
    fn from(a: TimeArgs) -> Self {
        ClientOptions {
            addr: a.addr,
            format: a.format,
            tcp: a.tcp,
            sntp: a.sntp,
            json: a.json,
            timeout: a.timeout,
            retries: a.retries,
        }
    }
}
