//! When NATS goes away and comes back. The client reconnects by itself (and subscribes
//! again); this module says so in the log and, once each way, to the members, and on the way
//! back makes sure the bucket and the stream are there (a NATS restarted without its store
//! has neither), writes this broker's names again (ones released meanwhile are deleted,
//! ones lost with the store put back) and watches the bucket afresh.
use std::collections::HashSet;
use std::sync::Arc;

use async_nats::Event;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{Cluster, history, names};
use crate::chat::fanout::Fanout;
use crate::retry::Backoff;
use std::sync::atomic::Ordering;

/// How long a watch of the names bucket must have run to count as working (its end then
/// starts the waits before the next one from the first).
const WATCH_WORKED: std::time::Duration = std::time::Duration::from_secs(30);

/// What members are told when the link goes down.
pub const DOWN: &str =
    "the link to the other brokers is down: only members of this broker hear you until it is back";
/// What members are told when it is back.
pub const BACK: &str = "the link to the other brokers is back";

/// Starts following the client's events, and the first watch of the names bucket.
pub fn start(cluster: &Arc<Cluster>, mut events: mpsc::UnboundedReceiver<Event>) {
    let weak = Arc::downgrade(cluster);
    let mut watch = Some(spawn_watch(cluster));
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Some(c) = weak.upgrade() else { return };
            match event {
                Event::Disconnected => {
                    if c.linked.swap(false, Ordering::AcqRel) {
                        warn!("lost NATS: serving this broker's members only until it is back");
                        c.rooms.tell_all(DOWN);
                    }
                }
                Event::Connected => {
                    if !c.linked.load(Ordering::Acquire) {
                        if let Some(w) = watch.take() {
                            w.abort();
                        }
                        relink(&c).await;
                        c.linked.store(true, Ordering::Release);
                        watch = Some(spawn_watch(&c));
                        info!("NATS is back: joined to the other brokers again");
                        c.rooms.tell_all(BACK);
                    }
                }
                Event::SlowConsumer(sid) => {
                    warn!(sid, "NATS dropped messages for this broker: it fell behind")
                }
                other => debug!(event = %other, "NATS event"),
            }
        }
    });
}

/// Keeps the copy of the bucket up to date, watching again (after a pause) whenever a watch
/// ends; aborted and started afresh when NATS comes back.
fn spawn_watch(c: &Arc<Cluster>) -> JoinHandle<()> {
    let store = c.store();
    let replica = c.replica.clone();
    let weak = Arc::downgrade(c);
    // A name of this broker's deleted while its member still uses it: written again.
    let lost = move |holder: names::Holder| {
        let Some(c) = weak.upgrade() else { return };
        if holder.broker != c.me {
            return;
        }
        if let Some((name, room)) = c.rooms.whereabouts(holder.member)
            && *name == *holder.name
        {
            c.placed(holder.member, &name, &room);
        }
    };
    tokio::spawn(async move {
        let mut backoff = Backoff::reconnect();
        loop {
            let started = tokio::time::Instant::now();
            names::watch(&store, &replica, &lost).await;
            // A watch that ran a while worked: the next one that ends at once waits little.
            if started.elapsed() > WATCH_WORKED {
                backoff.reset();
            }
            tokio::time::sleep(backoff.next_wait()).await;
        }
    })
}

/// Makes the bucket and stream again if need be and writes this broker's names again.
async fn relink(c: &Cluster) {
    match names::bucket(&c.js).await {
        Ok(store) => *c.names.lock().unwrap_or_else(|e| e.into_inner()) = store,
        Err(e) => warn!(error = %e, "the names bucket is not back"),
    }
    if let Err(e) = history::stream(&c.js).await {
        warn!(error = %e, "the history stream is not back");
    }
    let store = c.store();
    let roster = c.rooms.roster();
    let mut current = HashSet::new();
    for (id, name, room) in roster {
        current.extend(names::keys(&name));
        names::put(&store, &c.holder(id, &name, &room)).await;
    }
    // Names of members who left while NATS was away.
    for (key, held) in c.replica.held_by(&c.me) {
        if !current.contains(&key) {
            let _ = store
                .delete_expect_revision(&key, Some(held.revision))
                .await;
        }
    }
}
