//! Chat: `taojie serve chat` (a TCP line broker with names and rooms, and a UDP hub) and the
//! `taojie chat` client. Grown from the seeds' chat programs: the thread-per-client TCP chat,
//! the chat that ends with `byebye`, and the UDP "QQ" chat with a colour per name.
//!
//! The tree follows a line's path: [`crate::framing::lines`] splits what clients send,
//! [`crate::tty::sanitize`] makes it safe to show, [`line`](mod@line) says what names may be,
//! [`broker`] runs one TCP connection, [`post`] is what a line becomes on its way to a room
//! (whole lines and the member who wrote them), [`room`] knows members, names, rooms and
//! history (its files: `room/state`, `room/members`, `room/history`, `room/lanes`),
//! [`fanout`] is the one interface posts go through (a backplane joining several brokers
//! would implement it; the local one writes with one lane per core), [`queue`] is a member's
//! socket and the bounded queue of what it has not taken yet, [`hub`] is the UDP side,
//! [`web`] the page for browsers (its WebSockets are members relayed like encrypted ones),
//! [`nats`] the fan-out that joins brokers through NATS (`--nats`), and
//! [`client`](mod@client) the client (on the terminal screen of [`crate::tty`]). Dependencies
//! run one way: `fanout` → `room` → `queue` → `post`.
//!
//! The TCP protocol, one line each way:
//! - a client's line `text` reaches the others in its room as `<name> text`; `/me waves` as
//!   `* name waves`; `//text` sends `/text`;
//! - `/nick NAME`, `/who`, `/join ROOM`, `/quit` (or `byebye`) are commands;
//! - the broker's own lines start with `*** ` (welcome, joins, leaves, renames, errors).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::server::{self, Limits, Listener, LiveLimits};

pub mod broker;
pub mod client;
pub mod fanout;
pub mod gate;
pub mod hub;
pub mod line;
pub mod nats;
pub mod post;
pub mod queue;
pub mod room;
pub mod web;

pub use client::run as client;

/// Default chat port on `taojie serve` (TCP and, without a key, UDP).
pub const DEFAULT_PORT: u16 = 9006;
/// Default lines a member may fall behind before it is dropped.
pub const DEFAULT_QUEUE: usize = 1024;
/// Default longest time a member's oldest queued line may wait before it is dropped.
pub const DEFAULT_MAX_LAG: f64 = 10.0;
/// Default bytes a member may have queued before it is dropped.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 16 << 20;
/// Default size above which a room stops announcing joins, leaves and renames.
pub const DEFAULT_ANNOUNCE_MAX: usize = 200;
/// Default cap on connected members.
pub const DEFAULT_MAX_CONNS: usize = 20_000;

/// Flags of `taojie serve chat`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// TCP address of the line broker, e.g. `127.0.0.1:9006` or `[::1]:0`
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// UDP address of the hub (datagrams `NAME: text` relayed to every recent peer). taojie's
    /// client proves its address and gets everything; peers that cannot (seed clients, forged
    /// addresses) share about one byte out per byte the hub receives, so it amplifies nothing
    #[arg(long, value_name = "ADDR")]
    pub udp: Option<String>,
    /// Let only taojie clients with this shared key join the TCP broker, encrypted (nc can
    /// then not)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The broker's identity key pair, for clients with identity keys; needs --authorized
    #[arg(long, value_name = "FILE", requires = "authorized")]
    pub identity: Option<PathBuf>,
    /// The client public keys let in (`taojie-x25519 BASE64 COMMENT` lines; re-read on SIGHUP)
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub authorized: Option<PathBuf>,
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
    /// Members connected at once; more are closed as soon as they are accepted
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNS)]
    pub max_conns: usize,
    /// Close a connection silent for this many seconds (0: never, the default for chat)
    #[arg(long, value_name = "SECS", default_value_t = 0.0, value_parser = crate::flags::secs)]
    pub idle_timeout: f64,
    /// On SIGINT/SIGTERM, let open connections finish for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = crate::flags::secs)]
    pub grace: f64,
    /// Writers sending posts to members (0: one per CPU); more get a line to a big room sooner
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub lanes: usize,
    /// Rooms of at least this many members are written from every lane at once; smaller ones
    /// each by one lane
    #[arg(long, value_name = "MEMBERS", default_value_t = room::SPLIT_AT)]
    pub split_at: usize,
    /// TCP address of the chat page and its WebSocket (`/ws`), into the broker's rooms; with
    /// --key the page needs the token in the login URL printed at start
    #[arg(long, value_name = "ADDR")]
    pub web: Option<String>,
    /// Ping a quiet page's WebSocket this often, in seconds (keeps proxies from closing it);
    /// a page that answers nothing for 2.5 times this long has gone and leaves its room
    #[arg(long, value_name = "SECS", default_value_t = web::DEFAULT_PING_SECS, value_parser = crate::flags::positive_secs)]
    pub web_ping: f64,
    /// Limits on connections that have not proven their key yet (with --key or --identity)
    #[command(flatten)]
    pub preauth: server::PreAuthArgs,
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
    /// Limits that replace --max-conns, --idle-timeout and --grace when set (by `taojie serve
    /// --config`, which changes them on SIGHUP); not a flag.
    #[arg(skip)]
    pub live_limits: Option<LiveLimits>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            listen: None,
            udp: None,
            key: None,
            identity: None,
            authorized: None,
            max_line: line::DEFAULT_MAX_LINE,
            queue: DEFAULT_QUEUE,
            max_lag: DEFAULT_MAX_LAG,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            rate: 0.0,
            announce_max: DEFAULT_ANNOUNCE_MAX,
            max_conns: DEFAULT_MAX_CONNS,
            idle_timeout: 0.0,
            grace: 5.0,
            lanes: 0,
            split_at: room::SPLIT_AT,
            web: None,
            nats: None,
            nats_creds: None,
            nats_token_file: None,
            web_ping: web::DEFAULT_PING_SECS,
            preauth: server::PreAuthArgs::default(),
            live_limits: None,
        }
    }
}

/// Flags of `taojie chat`.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The broker (or, with --udp, the hub) to join, e.g. 127.0.0.1:9006; several brokers
    /// joined by --nats, comma-separated: when one is gone the client joins the next, under
    /// the same name and in the same room
    pub addr: String,
    /// Your name in the chat
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Use the UDP hub instead of the TCP broker
    #[arg(long)]
    pub udp: bool,
    /// Join a broker started with --key: the shared key, and the chat encrypted
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub key: Option<PathBuf>,
    /// Join a broker that takes identity keys, with yours (`taojie keygen --identity FILE`)
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// Runs the broker and hub `args` names (the broker on 127.0.0.1:9006, and the hub there too
/// when there is no key, if it names neither) until `shutdown` is cancelled.
pub async fn run(args: ServeArgs, shutdown: CancellationToken) -> Result<()> {
    let default = format!("127.0.0.1:{DEFAULT_PORT}");
    let (tcp, udp) = match (&args.listen, &args.udp) {
        // The hub cannot authenticate anyone, so a keyed default leaves it off.
        (None, None) if args.key.is_some() || args.identity.is_some() => (Some(default), None),
        (None, None) => (Some(default.clone()), Some(default)),
        (l, u) => (l.clone(), u.clone()),
    };
    let auth = if args.key.is_some() || args.identity.is_some() {
        let addrs: Vec<std::net::SocketAddr> = Vec::new();
        Some(Arc::new(crate::secure::flags::server_auth(
            "chat",
            args.key.as_deref(),
            args.identity.as_deref(),
            args.authorized.as_deref(),
            false,
            &addrs,
        )?))
    } else {
        None
    };
    let listener = match tcp {
        Some(addr) => Some(server::bind_tcp(crate::addr::resolve_one(&addr).await?)?),
        None => None,
    };
    let udp = match udp {
        Some(addr) => Some(server::listen_udp(&addr).await?),
        None => None,
    };
    let web = match &args.web {
        Some(_) if listener.is_none() => anyhow::bail!("--web needs the TCP broker (--listen)"),
        Some(addr) => Some(server::bind_tcp(crate::addr::resolve_one(addr).await?)?),
        None => None,
    };

    let mut tasks = tokio::task::JoinSet::new();
    let mut cluster = None;
    if let Some(listener) = listener {
        let local = listener.local_addr()?;
        if auth.is_none() && !local.ip().is_loopback() {
            warn!(%local, "chat broker open to anyone who can reach it (no --key)");
        }
        // One lane per CPU by default: a big room's sends run on all of them at once.
        let lanes = match args.lanes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(16)),
            n => n.min(256),
        };
        let me = nats::broker_id();
        let rooms = room::Rooms::new(room::Config {
            queue: queue::QueueLimits {
                high: args.queue.max(1),
                max_lag: Duration::from_secs_f64(args.max_lag.clamp(0.1, 86_400.0)),
                max_bytes: args.max_queue_bytes.max(64 * 1024),
            },
            announce_max: args.announce_max,
            lanes,
            split_at: args.split_at,
        });
        let rooms = Arc::new(match &args.nats {
            Some(_) => rooms.with_default_suffix(&nats::default_suffix(&me)),
            None => rooms,
        });
        let max_line = args.max_line.max(1);
        let rate = (args.rate > 0.0).then_some(args.rate);
        let lanes_out = fanout::Local::new(rooms.clone());
        let fanout: Arc<dyn fanout::Fanout> = match &args.nats {
            Some(url) => {
                let opts = nats::Options {
                    url: url.clone(),
                    creds: args.nats_creds.clone(),
                    token: args.nats_token_file.clone(),
                };
                let c = nats::Cluster::join(&opts, me, rooms.clone(), lanes_out, (max_line, rate))
                    .await?;
                cluster = Some(c.clone());
                c
            }
            None => Arc::new(lanes_out),
        };
        // Announced once it can take members (joined to the other brokers, history loaded).
        server::announce("chat", "tcp", &local);
        let broker = Arc::new(broker::Broker {
            fanout,
            rooms,
            max_line,
            rate,
            auth,
            preauth: Arc::new(args.preauth.to_guard().for_service("chat")),
        });
        if let Some(web) = web {
            let shutdown = shutdown.clone().cancelled_owned();
            let ping = Duration::from_secs_f64(args.web_ping);
            tasks.spawn(web::start(web, &broker, ping, limits(&args), shutdown)?);
        }
        let shutdown = shutdown.clone().cancelled_owned();
        tasks.spawn(server::serve_stream(
            "chat",
            Listener::Tcp(listener),
            limits(&args),
            move |conn| broker::session(conn, broker.clone()),
            shutdown,
        ));
    }
    if let Some(socket) = udp {
        server::announce("chat", "udp", &socket.local_addr()?);
        let shutdown = shutdown.clone().cancelled_owned();
        tasks.spawn(hub::serve(socket, args.max_line.max(1), shutdown));
    }
    while tasks.join_next().await.is_some() {}
    if let Some(c) = cluster {
        // Members who stayed to the end were released as they left; make sure it reached NATS.
        c.leave().await;
    }
    Ok(())
}

/// The limits the broker and its page run with: the live ones when set (`--config`), else
/// the flags' for good.
fn limits(args: &ServeArgs) -> LiveLimits {
    match &args.live_limits {
        Some(live) => live.clone(),
        None => flag_limits(args).into(),
    }
}

/// The connection limits `args`' flags ask for.
pub fn flag_limits(args: &ServeArgs) -> Limits {
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    Limits {
        max_conns: args.max_conns.max(1),
        idle_timeout: (args.idle_timeout > 0.0).then(|| secs(args.idle_timeout)),
        grace: secs(args.grace),
    }
}
