//! Posts between brokers: one task publishes this broker's posts in the order they were
//! made, one receives the others' and hands them to this broker's members.
//!
//! One subscription takes every room, so a sender's lines and notices arrive in the order
//! they were published. What arrives is checked ([`wire::decode`]) and goes through the same
//! [`Local`](crate::chat::fanout::Local) fan-out as local posts: members' queue caps drop a
//! member that stops reading, and while the lanes are behind the receiver stops taking
//! messages (NATS then holds them, and past its own limits treats this broker as a slow
//! consumer, which the log reports). Each remote sender is held to the broker's `--rate`
//! too, with room for network jitter; lines past it are dropped with a debug line.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::debug;

use super::{Cluster, wire};
use crate::chat::fanout::{Fanout, Post};

/// Posts the publisher takes at once (the client then writes them in few system calls).
const BATCH: usize = 256;

/// Starts the publisher and the receiver.
pub async fn start(cluster: &Arc<Cluster>, outbox: mpsc::Receiver<Post>) -> Result<()> {
    let sub = cluster
        .client
        .subscribe(wire::ALL_ROOMS)
        .await
        .context("subscribe to the rooms")?;
    tokio::spawn(publish(cluster.client.clone(), cluster.me.clone(), outbox));
    tokio::spawn(receive(Arc::downgrade(cluster), sub));
    Ok(())
}

async fn publish(client: async_nats::Client, me: String, mut outbox: mpsc::Receiver<Post>) {
    let mut batch = Vec::with_capacity(BATCH);
    while outbox.recv_many(&mut batch, BATCH).await > 0 {
        for post in batch.drain(..) {
            if let Err(e) = client
                .publish(wire::subject(&post), wire::encode(&me, &post))
                .await
            {
                debug!(error = %e, "post not published");
            }
        }
    }
}

async fn receive(cluster: std::sync::Weak<Cluster>, mut sub: async_nats::Subscriber) {
    let mut limits = Limits::default();
    while let Some(msg) = sub.next().await {
        let Some(c) = cluster.upgrade() else { return };
        match wire::decode(&msg.subject, &msg.payload, c.max_line) {
            Err(why) => debug!(subject = %msg.subject, why, "malformed message from NATS dropped"),
            Ok(remote) if remote.from == c.me => {}
            Ok(remote) => {
                let post = remote.post;
                if post.keep && !limits.allow(&c, &remote.from, &post) {
                    debug!(from = %remote.from, room = %post.room, "lines past --rate dropped");
                    continue;
                }
                if post.keep {
                    // Kept for whoever comes into the room here later.
                    c.rooms.open(&post.room);
                }
                c.local.publish(post);
            }
        }
        if let Some(wait) = c.local.backlogged() {
            wait.await;
        }
    }
}

/// Remote senders' token buckets, when the broker has a `--rate`.
#[derive(Default)]
struct Limits {
    buckets: HashMap<(String, String), (f64, Instant)>,
    swept: Option<Instant>,
}

impl Limits {
    /// Whether `post`'s lines are within the rate of their sender (by name, per broker).
    /// A burst of four times the rate is allowed, twice the local one: lines a sender spread
    /// out may arrive bunched together.
    fn allow(&mut self, c: &Cluster, from: &str, post: &Post) -> bool {
        let Some(rate) = c.rate else {
            return true;
        };
        let now = Instant::now();
        if self
            .swept
            .is_none_or(|t| now.duration_since(t).as_secs() >= 60)
        {
            // Forget senders whose bucket has been full for a while.
            self.buckets
                .retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
            self.swept = Some(now);
        }
        let sender = sender(&post.lines);
        let (tokens, at) = self
            .buckets
            .entry((from.to_string(), sender.to_string()))
            .or_insert((4.0 * rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(4.0 * rate);
        *at = now;
        let n = post.count as f64;
        if *tokens + 1e-9 < n {
            return false;
        }
        *tokens -= n;
        true
    }
}

/// The name a chat line is from (`<name> ...` or `* name ...`).
fn sender(lines: &[u8]) -> &str {
    let line = std::str::from_utf8(lines).unwrap_or("");
    let rest = line
        .strip_prefix('<')
        .map(|r| r.split('>').next().unwrap_or(""))
        .or_else(|| {
            line.strip_prefix("* ")
                .map(|r| r.split(' ').next().unwrap_or(""))
        });
    rest.unwrap_or("")
}
