//! Each room's recent lines: the last [`HISTORY`] chat lines are kept (notices are not), each
//! with the time it was said, and given to whoever comes in, in the same write as their
//! greeting. A line of history carries its time in front, in UTC to the second, so a page or
//! a client can show it in its own time zone:
//!
//! ```text
//! [2025-06-01T14:03:12Z] <ann> hello
//! ```
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::state::{Rooms, Said};
use crate::chat::queue::Member;

/// Lines of history a new member of a room gets.
pub const HISTORY: usize = 20;

/// The stamp a line of history carries: `[2025-06-01T14:03:12Z] `.
pub fn stamp(at: SystemTime) -> String {
    let utc: chrono::DateTime<chrono::Utc> = at.into();
    format!("[{}] ", utc.format("%Y-%m-%dT%H:%M:%SZ"))
}

/// Keeps the last [`HISTORY`] lines of `lines`, said at `at`.
pub(super) fn remember(history: &mut VecDeque<Said>, lines: &Bytes, at: SystemTime) {
    let mut ends = Vec::with_capacity(HISTORY + 1);
    let mut end = lines.len();
    while ends.len() < HISTORY && end > 0 {
        let start = lines[..end - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        ends.push((start, end));
        end = start;
    }
    for &(s, e) in ends.iter().rev() {
        if history.len() == HISTORY {
            history.pop_front();
        }
        // A copy, so a long-lived history line does not pin a whole large batch.
        history.push_back(Said {
            at,
            line: Bytes::copy_from_slice(&lines[s..e]),
        });
    }
}

impl Rooms {
    /// Makes `room` if it is not there yet, so lines for it from elsewhere (another broker)
    /// are kept in its history for whoever comes in here later.
    pub fn open(&self, room: &Arc<str>) {
        let mut st = self.lock();
        st.open_room(&self.config, room);
    }

    /// Adds `lines` (whole lines, each ending in a newline), said at `at`, to the history of
    /// `room`, as if they had been posted here; for a history kept elsewhere, loaded at start.
    pub fn remember(&self, room: &Arc<str>, lines: &Bytes, at: SystemTime) {
        let mut st = self.lock();
        remember(&mut st.open_room(&self.config, room).history, lines, at);
    }
}

/// Sends `member` its `greeting` and then the room's `history`, each line stamped with its
/// time, in one write.
pub(super) fn replay(member: &Member, greeting: &[u8], history: &VecDeque<Said>) {
    let mut first = BytesMut::from(greeting);
    for said in history {
        first.extend_from_slice(stamp(said.at).as_bytes());
        first.extend_from_slice(&said.line);
    }
    if !first.is_empty() {
        member.push(&[(&first.freeze(), 1 + history.len())], Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use crate::chat::post::Post;
    use crate::chat::room::state::LOBBY;
    use crate::chat::room::testing::{deliver, drain, new_rooms};

    #[test]
    fn names_are_unique_and_history_is_bounded() {
        let rooms = new_rooms(100, 100, 2);
        let (a, _ma, an, _) = rooms.enter(None);
        let (b, mb, _, _) = rooms.enter(None);
        assert_eq!(&*an, "user1");
        rooms.rename(a, "Alice").unwrap();
        assert!(rooms.rename(b, "alice").is_err());
        let lines: String = (0..30).map(|i| format!("<Alice> {i}\n")).collect();
        let post = Post {
            room: LOBBY.into(),
            lines: lines.into(),
            count: 30,
            from: Some(a),
            keep: true,
            about: None,
        };
        assert!(deliver(&rooms, &post).is_empty());
        assert!(drain(&mb).contains("<Alice> 29\n"));
        let (_, mc, _, _) = rooms.enter(None);
        let got = drain(&mc);
        assert!(got.contains("Z] <Alice> 10\n[") && !got.contains("<Alice> 9\n"));
        // Each line of history carries the time it was said.
        let first = got.lines().nth(1).unwrap();
        assert!(
            first.starts_with('[') && first.ends_with("Z] <Alice> 10"),
            "{first}"
        );
        assert!(
            rooms
                .who(b, &|_| Vec::new())
                .contains("Alice, user2, user3")
        );
    }
}
