//! The flags of `taojie bench`, and the options they make.
use clap::Args;

use crate::bench::Options;

/// Flags of `taojie bench`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  taojie bench 127.0.0.1:9007 --conns 50 --depth 16\n  \
taojie bench 127.0.0.1:9007 --udp --size 512 --json"
)]
pub struct BenchArgs {
    /// Echo server address, HOST:PORT
    #[arg(value_parser = crate::addr::host_port)]
    pub addr: String,
    /// Connections (UDP: sockets) opened before the clock starts
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub conns: usize,
    /// Requests in flight on each connection
    #[arg(long, value_name = "D", default_value_t = 1)]
    pub depth: usize,
    /// Bytes per request (UDP: at least 16, at most 65507)
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,
    /// How long to send requests
    #[arg(long, value_name = "S", default_value_t = 5.0, value_parser = crate::flags::positive_secs)]
    pub seconds: f64,
    /// Use UDP datagrams instead of TCP
    #[arg(long)]
    pub udp: bool,
    /// Expect answers upper-cased (for servers like the seeds')
    #[arg(long)]
    pub upper: bool,
    /// Print the figures as one JSON object
    #[arg(long)]
    pub json: bool,
}

impl From<BenchArgs> for Options {
    fn from(a: BenchArgs) -> Self {
        Options {
            addr: a.addr,
            conns: a.conns,
            depth: a.depth,
            size: a.size,
            seconds: a.seconds,
            udp: a.udp,
            upper: a.upper,
            json: a.json,
        }
    }
}
