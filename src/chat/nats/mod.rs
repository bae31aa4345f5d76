//! Brokers joined through NATS (`taojie serve chat --nats URL`): the [`Cluster`] fan-out
//! delivers every post to this broker's members at once (through a [`Local`]) and publishes
//! it on its room's subject; posts from other brokers come back the other way, checked, and
//! go to this broker's members through the same [`Local`], with the same queues, caps and
//! flow control as local posts.
//!
//! One concern per file: [`wire`] the subjects and payloads (and checking what arrives),
//! [`backplane`] publishing and receiving posts, [`names`] names in a key-value bucket and
//! the copy of it `/who` reads, [`history`] the stream of each room's last lines, [`beat`]
//! which brokers are alive (and what happens to the names of one that dies), [`link`] what
//! happens when NATS goes away and comes back.
//!
//! NATS is a way to reach other brokers, never a condition for chatting: when it is gone,
//! this broker's members go on talking to each other, are told once, and the broker rejoins
//! by itself (the client reconnects; `link` then registers the names again).
pub mod backplane;
pub mod beat;
pub mod history;
pub mod link;
pub mod names;
pub mod wire;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::kv::Store;
use tokio::sync::mpsc;
use tracing::info;

use super::fanout::{Fanout, Local, MemberId, Post, Reservation};
use super::room::Rooms;
use names::{Holder, Refusal, Replica};

/// Posts waiting to be published. Past half of it senders wait (see `backlogged`); full, a
/// post reaches this broker's members only (the notices the lanes make do not wait).
const OUTBOX: usize = 8192;

/// How to reach NATS.
#[derive(Clone, Debug)]
pub struct Options {
    /// `nats://HOST:PORT` (several, comma-separated, for a NATS cluster).
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// A file holding the token the server wants.
    pub token: Option<PathBuf>,
}

/// A change to this broker's names in the bucket, applied in order.
enum NameOp {
    /// Write who holds a name (a default name, a move to another room).
    Put(Holder),
    /// Give back a name's keys, except those of `keep`.
    Release(String, Option<String>),
}

/// This broker, joined to the others: a fan-out over its own members and NATS.
pub struct Cluster {
    /// This broker's id (16 hex digits, new at each start).
    pub me: String,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    names: Mutex<Store>,
    replica: Arc<Replica>,
    local: Arc<Local>,
    rooms: Arc<Rooms>,
    max_line: usize,
    rate: Option<f64>,
    outbox: mpsc::Sender<Post>,
    name_ops: mpsc::UnboundedSender<NameOp>,
    /// Whether NATS is reachable now.
    linked: AtomicBool,
}

/// A fresh broker id: 8 random bytes in hex.
pub fn broker_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the system's random source");
    wire::hex(&b)
}

/// The suffix of this broker's default names (`user1-` + the first six digits of its id),
/// so two brokers' default names do not clash (two of 16 million tags would have to match).
pub fn default_suffix(me: &str) -> String {
    format!("-{}", &me[..6])
}

impl Cluster {
    /// Connects to NATS, makes the names bucket and the history stream if they are not there,
    /// loads the history into `rooms`, and starts publishing, receiving and watching. Fails
    /// with one clear error when NATS cannot be reached or has no JetStream.
    pub async fn join(
        opts: &Options,
        me: String,
        rooms: Arc<Rooms>,
        local: Local,
        limits: (usize, Option<f64>),
    ) -> Result<Arc<Cluster>> {
        let (max_line, rate) = limits;
        let (events, events_rx) = mpsc::unbounded_channel();
        let mut connect = async_nats::ConnectOptions::new()
            .name(format!("taojie chat {me}"))
            .no_echo()
            .max_reconnects(None)
            .retain_servers_order()
            .connection_timeout(Duration::from_secs(3))
            .request_timeout(Some(Duration::from_secs(3)))
            .ping_interval(Duration::from_secs(5))
            .reconnect_delay_callback(|n| Duration::from_millis((250 * n as u64).min(2000)))
            .event_callback(move |event| {
                let _ = events.send(event);
                async {}
            });
        if let Some(path) = &opts.creds {
            connect = connect
                .credentials_file(path)
                .await
                .with_context(|| format!("--nats-creds {}", path.display()))?;
        }
        if let Some(path) = &opts.token {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("--nats-token-file {}", path.display()))?;
            connect = connect.token(token.trim_end_matches(['\r', '\n']).to_string());
        }
        let client = connect
            .connect(opts.url.as_str())
            .await
            .with_context(|| format!("cannot reach NATS at {}", opts.url))?;
        let js = async_nats::jetstream::new(client.clone());
        let store = names::bucket(&js).await.with_context(|| {
            format!(
                "NATS at {} has no JetStream (start nats-server with -js)",
                opts.url
            )
        })?;
        let mut stream = history::stream(&js).await?;
        let loaded = history::load(&client, &mut stream, &rooms, max_line).await?;
        info!(url = %opts.url, broker = %me, loaded, "joined the other brokers through NATS");

        let local = Arc::new(local);
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        let (name_ops, name_ops_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            me,
            client,
            js,
            names: Mutex::new(store),
            replica: Arc::default(),
            local,
            rooms,
            max_line,
            rate,
            outbox,
            name_ops,
            linked: AtomicBool::new(true),
        });
        let weak = Arc::downgrade(&cluster);
        cluster.local.set_tap(Box::new(move |post| {
            if let Some(c) = weak.upgrade() {
                c.send(post.clone());
            }
        }));
        backplane::start(&cluster, outbox_rx).await?;
        tokio::spawn(apply_names(Arc::downgrade(&cluster), name_ops_rx));
        beat::start(&cluster).await?;
        link::start(&cluster, events_rx);
        Ok(cluster)
    }

    /// On shutdown, once every session has ended: gives back whatever names of this broker
    /// are still in the bucket and flushes what is still to be sent, so the other brokers see
    /// its members leave once (as they left) and not again when its beats stop. Bounded.
    pub async fn leave(&self) {
        let done = async {
            while self.linked() && self.outbox.capacity() < OUTBOX {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let store = self.store();
            for (key, held) in self.replica.held_by(&self.me) {
                let _ = store
                    .delete_expect_revision(&key, Some(held.revision))
                    .await;
            }
            let _ = self.client.flush().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), done).await;
    }

    /// The names bucket (opened again when NATS comes back).
    fn store(&self) -> Store {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn linked(&self) -> bool {
        self.linked.load(Ordering::Acquire)
    }

    /// Hands a post to the publisher; dropped (for the other brokers only) while NATS is away
    /// or the publisher is that far behind.
    fn send(&self, post: Post) {
        if self.linked() {
            let _ = self.outbox.try_send(post);
        }
    }

    fn holder(&self, id: MemberId, name: &str, room: &str) -> Holder {
        Holder {
            name: name.to_string(),
            room: room.to_string(),
            broker: self.me.clone(),
            member: id,
        }
    }
}

impl Fanout for Cluster {
    fn publish(&self, post: Post) {
        self.send(post.clone());
        self.local.publish(post);
    }

    fn backlogged(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        if let Some(wait) = self.local.backlogged() {
            return Some(wait);
        }
        if !self.linked() || self.outbox.capacity() >= OUTBOX / 2 {
            return None;
        }
        // The publisher is behind (NATS takes less than the members send): senders wait
        // until it has caught up halfway, instead of their posts being dropped.
        Some(Box::pin(async move {
            while self.linked() && self.outbox.capacity() < OUTBOX / 2 {
                if self.outbox.reserve().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }))
    }

    fn elsewhere(&self, room: &str) -> Vec<String> {
        if !self.linked() {
            // Cut off, only this broker's members hear a line: /who says so.
            return Vec::new();
        }
        self.replica.others(room, &self.me)
    }

    fn placed(&self, id: MemberId, name: &str, room: &str) {
        let _ = self.name_ops.send(NameOp::Put(self.holder(id, name, room)));
    }

    fn released(&self, name: &str, keep: Option<&str>) {
        let _ = self
            .name_ops
            .send(NameOp::Release(name.to_string(), keep.map(str::to_string)));
    }

    fn reserve(&self, id: MemberId, name: &str, room: &str) -> Option<Reservation> {
        if !self.linked() {
            // Only this broker's names can be checked; they are registered when NATS is back.
            return None;
        }
        let store = self.store();
        let holder = self.holder(id, name, room);
        Some(Box::pin(async move {
            match names::claim(&store, &holder).await {
                Ok(()) => Ok(()),
                Err(Refusal::Taken) => Err(format!(
                    "the name {} is taken (or looks like one that is)",
                    holder.name
                )),
                Err(Refusal::Failed(e)) => {
                    tracing::warn!(error = %e, "could not reserve a name in NATS");
                    Err(format!(
                        "could not reserve the name {} across brokers; try again",
                        holder.name
                    ))
                }
            }
        }))
    }
}

/// Applies this broker's name changes to the bucket, one after another.
async fn apply_names(cluster: std::sync::Weak<Cluster>, mut ops: mpsc::UnboundedReceiver<NameOp>) {
    while let Some(op) = ops.recv().await {
        let Some(c) = cluster.upgrade() else { return };
        if !c.linked() {
            // Registered again, all at once, when NATS is back.
            continue;
        }
        let store = c.store();
        drop(c);
        match op {
            NameOp::Put(holder) => names::put(&store, &holder).await,
            NameOp::Release(name, keep) => names::release(&store, &name, keep.as_deref()).await,
        }
    }
}
