//! The flags of `taojie serve chat`, and the service's options they make. Its connection
//! limits are the framework's flags with chat's own defaults.
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::chat::{
    self, DEFAULT_ANNOUNCE_MAX, DEFAULT_MAX_LAG, DEFAULT_MAX_QUEUE_BYTES, DEFAULT_QUEUE,
};
use crate::chat::{line, room, web};
use crate::flags::in_place;
use crate::secure::flags::ServerKeyArgs;
use crate::server::{LimitArgs, PreAuthArgs};

/// [`chat::DEFAULT_MAX_CONNS`] as `--max-conns`' default.
const DEFAULT_MAX_CONNS_STR: &str = "20000";
const _: () = assert!(chat::DEFAULT_MAX_CONNS == 20_000);

/// Flags of `taojie serve chat`.
#[derive(Args, Debug, Clone)]
#[command(
    mut_args(in_place("key", |a| a.help(
        "Let only taojie clients with this shared key join the TCP broker, encrypted (nc can \
         then not)"
    ))),
    mut_args(in_place("identity", |a| a.help(
        "The broker's identity key pair, for clients with identity keys; needs --authorized"
    ))),
    // A member may sit quietly in a room for days: no idle timeout, and more of them.
    mut_args(in_place("max_conns", |a| a
        .help("Members connected at once; more are closed as soon as they are accepted")
        .default_value(DEFAULT_MAX_CONNS_STR))),
    mut_args(in_place("idle_timeout", |a| a
        .help("Close a connection silent for this many seconds (0: never, the default for chat)")
        .default_value("0"))),
)]
pub struct ChatArgs {
    /// TCP address of the line broker, e.g. `127.0.0.1:9006` or `[::1]:0`
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub listen: Option<String>,
    /// UDP address of the hub (datagrams `NAME: text` relayed to every recent peer). taojie's
    /// client proves its address and gets everything; peers that cannot (seed clients, forged
    /// addresses) share about one byte out per byte the hub receives, so it amplifies nothing
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub udp: Option<String>,
    /// Key flags
    #[command(flatten)]
    pub keys: ServerKeyArgs,
    /// Longest line accepted, in bytes; longer lines are refused with a notice
    #[arg(long, value_name = "BYTES", default_value_t = line::DEFAULT_MAX_LINE)]
    pub max_line: usize,
    /// Lines a member may have queued before it counts as behind: its room's senders then
    /// wait (are not read) until it drains to half of that
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_QUEUE)]
    pub queue: usize,
    /// Drop a member whose oldest queued line is older than this: it stopped reading. One slow
    /// member slows its room by at most this long
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_LAG, value_parser = crate::flags::positive_secs)]
    pub max_lag: f64,
    /// Drop a member with more than this many bytes queued, however fresh
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_QUEUE_BYTES)]
    pub max_queue_bytes: usize,
    /// Limit each sender to this many lines a second (bursts of twice that allowed); a sender
    /// past it is read more slowly, never dropped. 0: no limit
    #[arg(long, value_name = "LINES_PER_S", default_value_t = 0.0, value_parser = crate::flags::rate)]
    pub rate: f64,
    /// Rooms with more members than this leave join, leave and rename notices out
    #[arg(long, value_name = "MEMBERS", default_value_t = DEFAULT_ANNOUNCE_MAX)]
    pub announce_max: usize,
    /// Connection limits, with chat's own defaults
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Writers sending posts to members (0: one per CPU); more get a line to a big room sooner
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub lanes: usize,
    /// Rooms of at least this many members are written from every lane at once; smaller ones
    /// each by one lane
    #[arg(long, value_name = "MEMBERS", default_value_t = room::SPLIT_AT)]
    pub split_at: usize,
    /// TCP address of the chat page and its WebSocket (`/ws`), into the broker's rooms; with
    /// --key the page needs the token in the login URL printed at start
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub web: Option<String>,
    /// Ping a quiet page's WebSocket this often, in seconds (keeps proxies from closing it);
    /// a page that answers nothing for 2.5 times this long has gone and leaves its room
    #[arg(long, value_name = "SECS", default_value_t = web::DEFAULT_PING_SECS, value_parser = crate::flags::positive_secs)]
    pub web_ping: f64,
    /// Limits on connections that have not proven their key yet (with --key or --identity)
    #[command(flatten)]
    pub preauth: PreAuthArgs,
    /// Join other brokers through this NATS server (`nats://HOST:PORT`, JetStream on): rooms,
    /// names, /who and history span every broker given the same server
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// NATS credentials file (JWT and NKey seed, a `.creds` file)
    #[arg(
        long,
        value_name = "FILE",
        requires = "nats",
        conflicts_with = "nats_token_file"
    )]
    pub nats_creds: Option<PathBuf>,
    /// A file holding the token NATS wants (one trailing newline is not part of it)
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_token_file: Option<PathBuf>,
}

impl From<ChatArgs> for chat::ServeOptions {
    fn from(a: ChatArgs) -> Self {
        let nats = a.nats.map(|url| chat::nats::Options {
            url,
            creds: a.nats_creds,
            token: a.nats_token_file,
        });
        chat::ServeOptions {
            listen: a.listen,
            udp: a.udp,
            keys: a.keys.keys(false),
            max_line: a.max_line,
            queue: a.queue,
            max_lag: Duration::from_secs_f64(a.max_lag.clamp(0.1, 86_400.0)),
            max_queue_bytes: a.max_queue_bytes,
            rate: (a.rate > 0.0).then_some(a.rate),
            announce_max: a.announce_max,
            limits: a.limits.to_limits().into(),
            lanes: a.lanes,
            split_at: a.split_at,
            web: a.web,
            web_ping: Duration::from_secs_f64(a.web_ping),
            preauth: a.preauth.caps().into(),
            nats,
        }
    }
}
