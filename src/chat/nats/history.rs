//! Each room's recent lines, kept by JetStream: one stream over every room's chat-line
//! subject, keeping [`HISTORY`] messages per subject (a message holds at least one line, so
//! that is at least the last [`HISTORY`] lines). Brokers publish on those subjects anyway;
//! the stream keeps them without anyone publishing twice. A broker loads the stream when it
//! starts, before it takes members, so a newcomer on any broker gets a room's last lines, each
//! with the time the stream stored it (when it was said).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use async_nats::jetstream::consumer::{DeliverPolicy, push};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType, Stream};
use futures_util::StreamExt;
use tracing::debug;

use super::wire;
use crate::chat::room::{HISTORY, Rooms};

/// The stream's name.
pub const STREAM: &str = "TAOJIE_HISTORY";
/// How long loading may wait for the next stored message before giving up on the rest.
const LOAD_WAIT: Duration = Duration::from_secs(5);

/// Opens the history stream, making it if it is not there.
pub async fn stream(js: &async_nats::jetstream::Context) -> Result<Stream> {
    js.get_or_create_stream(stream::Config {
        name: STREAM.to_string(),
        description: Some("taojie chat: the last lines of each room".to_string()),
        subjects: vec![wire::KEPT.to_string()],
        max_messages_per_subject: HISTORY as i64,
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .context("the history stream")
}

/// Puts every stored line into `rooms`' histories, oldest first; returns how many messages.
pub async fn load(
    client: &async_nats::Client,
    stream: &mut Stream,
    rooms: &Rooms,
    max_line: usize,
) -> Result<u64> {
    let stored = stream
        .info()
        .await
        .context("history stream info")?
        .state
        .messages;
    if stored == 0 {
        return Ok(0);
    }
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: wire::KEPT.to_string(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("history consumer")?;
    let mut messages = consumer.messages().await.context("history messages")?;
    let mut loaded = 0;
    while let Ok(Some(message)) = tokio::time::timeout(LOAD_WAIT, messages.next()).await {
        let message = message.context("history message")?;
        loaded += 1;
        // The time the stream took the line, which is when it was said on its broker.
        let at = message.info().map_or(SystemTime::now(), |i| {
            let secs = i.published.unix_timestamp_nanos();
            UNIX_EPOCH + Duration::from_nanos(u64::try_from(secs).unwrap_or(0))
        });
        match wire::decode(&message.subject, &message.payload, max_line) {
            Ok(remote) => rooms.remember(&remote.post.room, &remote.post.lines, at),
            Err(why) => debug!(subject = %message.subject, why, "stored line dropped"),
        }
        if message.info().map_or(true, |i| i.pending == 0) {
            break;
        }
    }
    Ok(loaded)
}
