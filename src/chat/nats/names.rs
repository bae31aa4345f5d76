//! Names across brokers, in a JetStream key-value bucket: one key per name key (the
//! confusable skeleton [`name_keys`] gives, in hex), created only if absent, so a name
//! taken on one broker is taken on all. The value says who holds it: name, room, broker and
//! member. Every broker watches the bucket and keeps a copy, which answers `/who` for the
//! members of other brokers without asking anyone.
//!
//! A name is released when its member leaves (the key is deleted), and when its broker dies
//! without saying so the surviving brokers delete its keys (see `beat`), each delete
//! conditional on the revision they saw, so a name taken again meanwhile stays taken.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, Store};
use async_nats::jetstream::stream;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::wire::hex;
use crate::chat::line::name_keys;
use crate::chat::post::MemberId;

/// The bucket's name.
pub const BUCKET: &str = "taojie-names";

/// Who holds a name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// The name as its member spells it.
    pub name: String,
    /// The room its member is in.
    pub room: String,
    /// The broker its member is connected to.
    pub broker: String,
    /// The member, on that broker.
    pub member: MemberId,
}

/// One key's holder and the revision it was written at.
#[derive(Clone, Debug)]
pub struct Held {
    /// Who holds it.
    pub holder: Holder,
    /// The key's revision, for a conditional delete.
    pub revision: u64,
}

/// How long a deleted key's holder is remembered (see [`Replica::released_since`]).
const RELEASED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// This broker's copy of the bucket: key → holder.
#[derive(Default)]
pub struct Replica {
    keys: Mutex<HashMap<String, Held>>,
    /// Holders of keys deleted lately, and when: a dead broker's names may be freed by
    /// another broker before this one takes it for dead, and its members must still be told.
    released: Mutex<Vec<(Holder, tokio::time::Instant)>>,
}

impl Replica {
    /// Names in `room` held by members of brokers other than `me`, sorted, once each.
    pub fn others(&self, room: &str, me: &str) -> Vec<String> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = keys
            .values()
            .filter(|h| h.holder.room == room && h.holder.broker != me)
            .map(|h| h.holder.name.clone())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Every key held by members of `broker`.
    pub fn held_by(&self, broker: &str) -> Vec<(String, Held)> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter(|(_, h)| h.holder.broker == broker)
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect()
    }

    /// Holders of `broker`'s keys deleted after `since`: names another broker may have freed
    /// for it, which this one had not yet told its members about.
    pub fn released_since(&self, broker: &str, since: tokio::time::Instant) -> Vec<Holder> {
        let released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        released
            .iter()
            .filter(|(h, at)| h.broker == broker && *at > since)
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// Whether anyone holds `name` (or a name that looks like it) now.
    pub fn holds(&self, name: &str) -> bool {
        let held = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys(name).iter().any(|k| held.contains_key(k))
    }

    /// The brokers holding any name.
    pub fn brokers(&self) -> Vec<String> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let mut b: Vec<String> = keys.values().map(|h| h.holder.broker.clone()).collect();
        b.sort_unstable();
        b.dedup();
        b
    }

    /// Forgets `key`s held by `broker` (it is gone).
    pub fn forget(&self, broker: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|_, h| h.holder.broker != broker);
    }

    fn clear(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Applies one change; returns the holder a deleted key had.
    fn apply(&self, entry: kv::Entry) -> Option<Holder> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        match entry.operation {
            Operation::Put => match serde_json::from_slice::<Holder>(&entry.value) {
                Ok(holder) => {
                    keys.insert(
                        entry.key,
                        Held {
                            holder,
                            revision: entry.revision,
                        },
                    );
                }
                Err(e) => debug!(key = %entry.key, error = %e, "malformed name entry dropped"),
            },
            Operation::Delete | Operation::Purge => {
                let holder = keys.remove(&entry.key).map(|h| h.holder);
                if let Some(h) = &holder {
                    let now = tokio::time::Instant::now();
                    let mut released = self.released.lock().unwrap_or_else(|e| e.into_inner());
                    released.retain(|(_, at)| now.duration_since(*at) < RELEASED_FOR);
                    released.push((h.clone(), now));
                }
                return holder;
            }
        }
        None
    }
}

/// The bucket's keys for `name`.
pub fn keys(name: &str) -> Vec<String> {
    name_keys(name).iter().map(|k| hex(k.as_bytes())).collect()
}

/// Opens the bucket, making it if it is not there (history 1: only who holds a name now).
///
/// The bucket's stream is made here, as the key-value layer makes it, rather than through
/// `create_key_value`: that asks for account details nats-server 2.9 (Debian's) does not
/// send, and fails there.
pub async fn bucket(js: &async_nats::jetstream::Context) -> anyhow::Result<Store> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{BUCKET}"),
        description: Some("taojie chat: who holds each name".to_string()),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await?;
    Ok(js.get_key_value(BUCKET).await?)
}

/// Why a claim failed.
pub enum Refusal {
    /// Someone else holds it (or a name that looks like it).
    Taken,
    /// NATS did not answer as it should.
    Failed(String),
}

/// Takes every key of `holder.name` for `holder`, or none: a key held by another member
/// means the name is taken (and the keys taken so far are given back).
pub async fn claim(store: &Store, holder: &Holder) -> Result<(), Refusal> {
    let value = Bytes::from(serde_json::to_vec(holder).expect("a holder serialises"));
    let mut taken = Vec::new();
    for key in keys(&holder.name) {
        let result = match store.create(&key, value.clone()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                mine_already(store, &key, holder, &value).await
            }
            Err(e) => Err(Refusal::Failed(e.to_string())),
        };
        match result {
            Ok(()) => taken.push(key),
            Err(r) => {
                for key in taken {
                    let _ = store.delete(&key).await;
                }
                return Err(r);
            }
        }
    }
    Ok(())
}

/// A key that exists is fine if this very member holds it (a rename to another spelling of
/// the same name): it is written again with the new spelling.
async fn mine_already(
    store: &Store,
    key: &str,
    holder: &Holder,
    value: &Bytes,
) -> Result<(), Refusal> {
    let held = store
        .get(key)
        .await
        .map_err(|e| Refusal::Failed(e.to_string()))?;
    let mine = held
        .and_then(|v| serde_json::from_slice::<Holder>(&v).ok())
        .is_some_and(|h| h.broker == holder.broker && h.member == holder.member);
    if !mine {
        return Err(Refusal::Taken);
    }
    store
        .put(key, value.clone())
        .await
        .map(|_| ())
        .map_err(|e| Refusal::Failed(e.to_string()))
}

/// Writes `holder` under every key of its name, whoever held them (for a member's own name:
/// a default name, a move to another room, registering again after NATS came back).
pub async fn put(store: &Store, holder: &Holder) {
    let value = Bytes::from(serde_json::to_vec(holder).expect("a holder serialises"));
    for key in keys(&holder.name) {
        if let Err(e) = store.put(&key, value.clone()).await {
            debug!(name = %holder.name, error = %e, "could not write a name");
        }
    }
}

/// Releases the keys of `name` that `keep` (the member's new name) does not also use.
pub async fn release(store: &Store, name: &str, keep: Option<&str>) {
    let kept = keep.map(keys).unwrap_or_default();
    for key in keys(name).into_iter().filter(|k| !kept.contains(k)) {
        if let Err(e) = store.delete(&key).await {
            debug!(%name, error = %e, "could not release a name");
        }
    }
}

/// Keeps `replica` a copy of the bucket until the watch ends (NATS went away for good, or
/// the bucket was removed); the caller watches again when NATS is back. `lost` is given the
/// holder of every deleted key: one of this broker's may have been deleted by another broker
/// that took it for gone (it had not heard its beats), and is to be written again.
pub async fn watch(store: &Store, replica: &Arc<Replica>, lost: &(dyn Fn(Holder) + Send + Sync)) {
    let mut entries = match store.watch_with_history(">").await {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "cannot watch the names bucket");
            return;
        }
    };
    replica.clear();
    while let Some(entry) = entries.next().await {
        match entry {
            Ok(entry) => {
                if let Some(holder) = replica.apply(entry) {
                    lost(holder);
                }
            }
            Err(e) => {
                debug!(error = %e, "names watch ended");
                return;
            }
        }
    }
}
