//! What travels from a session through the fan-out to a room: a [`Post`] of whole lines, and
//! the [`MemberId`] it names its writer by. The vocabulary the rest of chat shares, so it
//! depends on none of them.
use std::sync::Arc;

use bytes::Bytes;

/// Identifies a member within one broker.
pub type MemberId = u64;

/// One or more whole lines for one room, ready to send as they are.
#[derive(Clone, Debug)]
pub struct Post {
    /// The room the lines are for.
    pub room: Arc<str>,
    /// The lines, each ending in `\n`; shared by every receiver, never copied per member.
    pub lines: Bytes,
    /// How many lines `lines` holds (queues are bounded in lines).
    pub count: usize,
    /// The local member who wrote them, who does not get them back; `None` for notices.
    pub from: Option<MemberId>,
    /// Whether the lines go into the room's history (chat lines do, notices do not).
    pub keep: bool,
    /// For a notice (join, leave, rename): the member it is about. Rooms above the announce
    /// limit leave notices out, so a crowd's comings and goings do not cost every member a
    /// line each, but this member still gets its own.
    pub about: Option<MemberId>,
}

/// A `*** text` notice for everyone in `room`.
pub fn notice(room: &Arc<str>, text: &str) -> Post {
    Post {
        room: room.clone(),
        lines: Bytes::from(format!("*** {text}\n")),
        count: 1,
        from: None,
        keep: false,
        about: None,
    }
}
