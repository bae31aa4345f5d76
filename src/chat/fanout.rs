//! The one seam between a chat session and everyone else: a session hands each post to a
//! [`Fanout`], and the fan-out gets it to the room's members.
//!
//! Today [`Local`] delivers straight to the members connected to this process. A later
//! backplane (Redis pub/sub, NATS) implements the same trait: it publishes each post on a
//! subject per room and, for posts arriving from other brokers, calls [`Rooms::deliver`] on
//! its own local members. Posts are already whole, attributed, sanitised lines, so the line
//! protocol clients see does not change when brokers are joined.
use std::sync::Arc;

use bytes::Bytes;

use super::room::Rooms;

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

/// Gets posts to every member of their room.
pub trait Fanout: Send + Sync + 'static {
    /// Publishes `post` to its room. Never blocks: a member whose queue is full is dropped.
    fn publish(&self, post: Post);
}

/// The in-process fan-out: every member is connected to this broker.
pub struct Local {
    rooms: Arc<Rooms>,
}

impl Local {
    /// A fan-out over the members of `rooms`.
    pub fn new(rooms: Arc<Rooms>) -> Self {
        Local { rooms }
    }
}

impl Fanout for Local {
    fn publish(&self, post: Post) {
        // Dropping a slow member posts a notice, which may drop another: a work list, not
        // recursion, keeps that bounded by the number of members.
        let mut work = vec![post];
        while let Some(post) = work.pop() {
            for name in self.rooms.deliver(&post) {
                work.push(super::room::notice(
                    &post.room,
                    &format!("{name} dropped (not reading)"),
                ));
            }
        }
    }
}
