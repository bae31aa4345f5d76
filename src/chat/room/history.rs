//! Each room's recent lines: the last [`HISTORY`] chat lines are kept (notices are not) and
//! given to whoever comes in, in the same write as their greeting.
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::chat::queue::Member;

/// Lines of history a new member of a room gets.
pub const HISTORY: usize = 20;

/// Keeps the last [`HISTORY`] lines of `lines` (slices share the post's buffer).
pub(super) fn remember(history: &mut VecDeque<Bytes>, lines: &Bytes) {
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
        history.push_back(Bytes::copy_from_slice(&lines[s..e]));
    }
}

/// Sends `member` its `greeting` and then the room's `history`, in one write.
pub(super) fn replay(member: &Member, greeting: &[u8], history: &VecDeque<Bytes>) {
    let mut first = BytesMut::from(greeting);
    for line in history {
        first.extend_from_slice(line);
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
        assert!(got.contains("<Alice> 10\n<Alice> 11\n") && !got.contains("<Alice> 9\n"));
        assert!(rooms.who(b).contains("Alice, user2, user3"));
    }
}
