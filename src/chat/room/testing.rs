//! Helpers for the rooms' unit tests: members without sockets, and delivery done inline the
//! way the fan-out's lanes do it.
use std::sync::Arc;

use tokio::time::Instant;

use super::state::{Config, Rooms, Route, SPLIT_AT};
use crate::chat::post::Post;
use crate::chat::queue::{Member, QueueLimits};

/// Everything queued for `m`, as text.
pub(super) fn drain(m: &Member) -> String {
    let items = m.drain().unwrap_or_default();
    items.iter().map(|b| String::from_utf8_lossy(b)).collect()
}

/// Rooms with the default split.
pub(super) fn new_rooms(queue: usize, announce_max: usize, lanes: usize) -> Rooms {
    Rooms::new(Config {
        queue: QueueLimits::lines(queue),
        announce_max,
        lanes,
        split_at: SPLIT_AT,
    })
}

/// Delivers as the lanes do, inline: the names of the members dropped on the way.
pub(super) fn deliver(rooms: &Rooms, post: &Post) -> Vec<Arc<str>> {
    let mut shards = Vec::new();
    rooms.deliver(post, &mut |route| {
        if let Route::Lane(_, shard) = route {
            shards.push(shard);
        }
    });
    let mut dropped = Vec::new();
    for member in shards.iter().flat_map(|s| s.iter()) {
        if Some(member.id()) != post.from
            && !member.push(&[(&post.lines, post.count)], Instant::now())
        {
            dropped.push(member.id());
        }
    }
    let mut names = Vec::new();
    for id in dropped {
        let notice = rooms.drop_member(id).unwrap();
        let text = String::from_utf8_lossy(&notice.lines).into_owned();
        names.push(
            text.trim_start_matches("*** ")
                .split(' ')
                .next()
                .unwrap()
                .into(),
        );
    }
    names
}
