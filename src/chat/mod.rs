//! Chat: `taojie serve chat` (a TCP line broker with names and rooms, and a UDP hub) and the
//! `taojie chat` client. Grown from the seeds' chat programs: the thread-per-client TCP chat,
//! the chat that ends with `byebye`, and the UDP "QQ" chat with a colour per name.
//!
//! The tree follows a line's path: [`crate::framing::lines`] splits what clients send,
//! [`crate::tty::sanitize()`] makes it safe to show, [`line`](mod@line) says what names may be,
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
//! - a client that names itself as it connects sends `/hello NAME [ROOM]` as its first line
//!   (within half a second): it comes in under that name (and in that room) with no default
//!   name announced first; until that half second has passed, or a first line has come, a
//!   silent client (someone at `nc`) is not yet welcomed;
//! - the broker's own lines start with `*** ` (welcome, joins, leaves, renames, errors).
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::secure::flags::{ClientKeys, ServerKeys};
use crate::server::{self, Limits, Listener, LiveCaps, LiveLimits, PreAuth};

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

pub use client::run;

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

/// What `chat::serve` runs: the broker, its hub and page, and their limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TCP address of the line broker.
    pub listen: Option<String>,
    /// UDP address of the hub.
    pub udp: Option<String>,
    /// The keys taojie clients must prove to join the broker (then encrypted; nc cannot).
    pub keys: ServerKeys,
    /// Longest line accepted, in bytes.
    pub max_line: usize,
    /// Lines a member may have queued before its room's senders wait.
    pub queue: usize,
    /// Drop a member whose oldest queued line is older than this.
    pub max_lag: Duration,
    /// Drop a member with more than this many bytes queued.
    pub max_queue_bytes: usize,
    /// Lines a second each sender may send (bursts of twice that); `None`: no limit.
    pub rate: Option<f64>,
    /// Rooms with more members than this leave join, leave and rename notices out.
    pub announce_max: usize,
    /// Connection limits of the broker and its page.
    pub limits: LiveLimits,
    /// Writers sending posts to members (0: one per CPU).
    pub lanes: usize,
    /// Rooms of at least this many members are written from every lane at once.
    pub split_at: usize,
    /// TCP address of the chat page and its WebSocket.
    pub web: Option<String>,
    /// How often a quiet page's WebSocket is pinged.
    pub web_ping: Duration,
    /// Caps on connections still in their handshake (with keys).
    pub preauth: LiveCaps,
    /// The NATS server joining this broker to others, and its credentials.
    pub nats: Option<nats::Options>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: None,
            udp: None,
            keys: ServerKeys::default(),
            max_line: line::DEFAULT_MAX_LINE,
            queue: DEFAULT_QUEUE,
            max_lag: Duration::from_secs_f64(DEFAULT_MAX_LAG),
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            rate: None,
            announce_max: DEFAULT_ANNOUNCE_MAX,
            limits: Limits {
                max_conns: DEFAULT_MAX_CONNS,
                idle_timeout: None,
                grace: Duration::from_secs(5),
            }
            .into(),
            lanes: 0,
            split_at: room::SPLIT_AT,
            web: None,
            web_ping: Duration::from_secs_f64(web::DEFAULT_PING_SECS),
            preauth: LiveCaps::default(),
            nats: None,
        }
    }
}

/// Whom `chat::run` joins, and as whom.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The broker (or, with `udp`, the hub) to join; several brokers joined by NATS,
    /// comma-separated, taken in turn when one is gone.
    pub addr: String,
    /// The name in the chat.
    pub name: String,
    /// Use the UDP hub instead of the TCP broker.
    pub udp: bool,
    /// The key for a broker started with one (the chat then encrypted).
    pub keys: ClientKeys,
    /// Reach the broker through this proxy (TCP only).
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

/// Runs the broker and hub `args` names (the broker on 127.0.0.1:9006, and the hub there too
/// when there is no key, if it names neither) until `shutdown` is cancelled.
pub async fn serve(args: ServeOptions, shutdown: CancellationToken) -> Result<()> {
    let default = format!("127.0.0.1:{DEFAULT_PORT}");
    let (tcp, udp) = match (&args.listen, &args.udp) {
        // The hub cannot authenticate anyone, so a keyed default leaves it off.
        (None, None) if args.keys.any() => (Some(default), None),
        (None, None) => (Some(default.clone()), Some(default)),
        (l, u) => (l.clone(), u.clone()),
    };
    let auth = match args.keys.any() {
        true => Some(Arc::new(args.keys.auth("chat", &[])?)),
        false => None,
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
                max_lag: args
                    .max_lag
                    .clamp(Duration::from_millis(100), Duration::from_secs(86_400)),
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
        let rate = args.rate.filter(|r| *r > 0.0);
        let lanes_out = fanout::Local::new(rooms.clone());
        let fanout: Arc<dyn fanout::Fanout> = match &args.nats {
            Some(opts) => {
                let c = nats::Cluster::join(opts, me, rooms.clone(), lanes_out, (max_line, rate))
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
            preauth: Arc::new(PreAuth::live(args.preauth.clone()).for_service("chat")),
        });
        if let Some(web) = web {
            let shutdown = shutdown.clone().cancelled_owned();
            let ping = args.web_ping;
            tasks.spawn(web::start(
                web,
                &broker,
                ping,
                args.limits.clone(),
                shutdown,
            )?);
        }
        let shutdown = shutdown.clone().cancelled_owned();
        tasks.spawn(server::serve_stream(
            "chat",
            Listener::Tcp(listener),
            args.limits.clone(),
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
