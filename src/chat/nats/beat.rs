//! Which brokers are alive: each says so on [`SUBJECT`] every [`EVERY`]; a broker holding
//! names that has not been heard from for [`DEAD_AFTER`] is gone (killed, or cut off). Each
//! surviving broker then tells its own members in the rooms concerned that those members
//! left, forgets them, and deletes their names from the bucket (each delete conditional on
//! the revision it saw, so whichever survivor is first does it and a name taken again since
//! is left alone). A broker that is itself cut off from NATS judges no one: it hears no one.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::{debug, info};

use super::Cluster;
use super::wire::is_broker_id;
use crate::chat::fanout::Fanout;
use crate::chat::post::notice;

/// Where brokers say they are alive.
pub const SUBJECT: &str = "taojie.beat";
/// How often a broker says so.
pub const EVERY: Duration = Duration::from_secs(1);
/// Silence after which a broker is taken for gone: names are free again within this and a
/// check (well within the 30 s the issue allows).
pub const DEAD_AFTER: Duration = Duration::from_secs(10);

/// Starts saying this broker is alive and watching for others that stopped.
pub async fn start(cluster: &Arc<Cluster>) -> Result<()> {
    let mut sub = cluster
        .client
        .subscribe(SUBJECT)
        .await
        .context("subscribe to the beats")?;
    let weak = Arc::downgrade(cluster);
    tokio::spawn(async move {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        // Since when this broker has heard everyone it could (NATS reachable).
        let mut hearing_since = Instant::now();
        loop {
            tokio::select! {
                msg = sub.next() => {
                    let Some(msg) = msg else { return };
                    match std::str::from_utf8(&msg.payload) {
                        Ok(id) if is_broker_id(id) => {
                            seen.insert(id.to_string(), Instant::now());
                        }
                        _ => debug!("malformed beat dropped"),
                    }
                }
                _ = tick.tick() => {
                    let Some(c) = weak.upgrade() else { return };
                    if !c.linked() {
                        hearing_since = Instant::now();
                        continue;
                    }
                    let _ = c.client.publish(SUBJECT, c.me.clone().into()).await;
                    if hearing_since.elapsed() < DEAD_AFTER {
                        continue;
                    }
                    // Brokers holding names, and brokers heard from: one whose names another
                    // broker freed first holds none here any more, and is still gone.
                    let mut brokers = c.replica.brokers();
                    brokers.extend(seen.keys().cloned());
                    brokers.sort_unstable();
                    brokers.dedup();
                    for broker in brokers {
                        let silent = seen.get(&broker).is_none_or(|t| t.elapsed() >= DEAD_AFTER);
                        if broker != c.me && silent {
                            let last = seen.get(&broker).copied().unwrap_or(hearing_since);
                            gone(&c, &broker, last);
                            seen.remove(&broker);
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// Tells this broker's members that `broker`'s members left, and frees their names. The
/// names another broker freed first are told too: this broker's copy of the bucket no longer
/// holds them, its members still must hear that their owners left. A survivor frees names
/// only after [`DEAD_AFTER`] of silence, so deletes sooner than half that after `last` (the
/// last beat heard) were the broker's own members leaving, already told, and are not told
/// again; nor is a freed name someone took since (its member came back on another broker,
/// which its room saw): "left" would then read as the new holder leaving.
fn gone(c: &Cluster, broker: &str, last: Instant) {
    let held = c.replica.held_by(broker);
    c.replica.forget(broker);
    let mut freed = c.replica.released_since(broker, last + DEAD_AFTER / 2);
    freed.retain(|h| !c.replica.holds(&h.name));
    let mut told = HashSet::new();
    for holder in held.iter().map(|(_, h)| &h.holder).chain(&freed) {
        if told.insert(holder.name.clone()) {
            let room = holder.room.as_str().into();
            let left = notice(
                &room,
                &format!(
                    "{} left {} (their broker is gone)",
                    holder.name, holder.room
                ),
            );
            c.local.publish(left);
        }
    }
    info!(%broker, names = told.len(), "a broker went silent; its members' names are free");
    let store = c.store();
    tokio::spawn(async move {
        for (key, h) in held {
            if let Err(e) = store.delete_expect_revision(&key, Some(h.revision)).await {
                debug!(error = %e, "name already released");
            }
        }
    });
}
