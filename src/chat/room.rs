//! Who is here: members, their unique names, the rooms they are in and each room's recent
//! history. One lock guards it all; it is never held across an `.await`. Delivering a post
//! under it only hands the room's members, split into lanes, to the fan-out: the writing
//! happens outside the lock.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

use super::fanout::{MemberId, Post};
use super::line::valid_name;
use super::queue::Member;
use crate::server::Conn;

/// The room everyone starts in.
pub const LOBBY: &str = "lobby";
/// Lines of history a new member of a room gets.
pub const HISTORY: usize = 20;

#[derive(Debug)]
struct Info {
    name: Arc<str>,
    room: Arc<str>,
    handle: Arc<Member>,
}

/// The members of one lane of a room, as the room was when a post was delivered.
pub type Shard = Arc<[Arc<Member>]>;

#[derive(Debug, Default)]
struct Room {
    members: HashMap<MemberId, Arc<Member>>,
    history: VecDeque<Bytes>,
    /// The members split by lane, rebuilt on the first post after the membership changed.
    shards: Option<Vec<Shard>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: MemberId,
    next_default: u64,
    /// Lower-cased name → member, so `Alice` cannot pose as `alice`.
    names: HashMap<String, MemberId>,
    members: HashMap<MemberId, Info>,
    rooms: HashMap<Arc<str>, Room>,
}

/// Every member and room of one broker.
#[derive(Debug)]
pub struct Rooms {
    state: Mutex<State>,
    queue_lines: usize,
    announce_max: usize,
    lanes: usize,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole chat down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    /// No members yet; each member may fall `queue_lines` lines behind before it is dropped,
    /// rooms of more than `announce_max` members leave join, leave and rename notices out, and
    /// posts are written by `lanes` writers, each to its own share of the members.
    pub fn new(queue_lines: usize, announce_max: usize, lanes: usize) -> Self {
        Rooms {
            state: Mutex::new(State::default()),
            queue_lines,
            announce_max,
            lanes: lanes.max(1),
        }
    }

    /// How many lanes members are split into.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// A new member with a default name (`user1`, ...) in the lobby, writing to `sink`. It is
    /// greeted and given the lobby's history; the returned post announces it to the others.
    pub fn enter(&self, sink: Option<Arc<Conn>>) -> (MemberId, Arc<Member>, Arc<str>, Post) {
        let mut st = lock(&self.state);
        st.next_id += 1;
        let id = st.next_id;
        let member = Arc::new(Member::new(id, self.queue_lines, sink));
        let name: Arc<str> = loop {
            st.next_default += 1;
            let candidate = format!("user{}", st.next_default);
            if !st.names.contains_key(&candidate) {
                break candidate.into();
            }
        };
        st.names.insert(name.to_string(), id);
        let lobby: Arc<str> = LOBBY.into();
        let welcome = format!(
            "*** welcome, you are {name} in {LOBBY}; commands: /nick NAME, /who, /join ROOM, /me ACTION, /quit\n"
        );
        st.members.insert(
            id,
            Info {
                name: name.clone(),
                room: lobby.clone(),
                handle: member.clone(),
            },
        );
        add_to_room(&mut st, &lobby, id, &member, welcome.as_bytes());
        drop(st);
        let post = Post {
            from: Some(id),
            ..notice(&lobby, &format!("{name} joined {LOBBY}"))
        };
        (id, member, name, post)
    }

    /// Renames a member; the post tells its room (the member too, as confirmation).
    pub fn rename(&self, id: MemberId, new: &str) -> Result<(Arc<str>, Post), String> {
        valid_name(new)?;
        let mut st = lock(&self.state);
        let key = new.to_lowercase();
        let info = st.members.get(&id).ok_or("you are not connected")?;
        let (old, room) = (info.name.clone(), info.room.clone());
        match st.names.get(&key) {
            Some(&other) if other != id => return Err(format!("the name {new} is taken")),
            _ => {}
        }
        st.names.remove(&old.to_lowercase());
        st.names.insert(key, id);
        let name: Arc<str> = new.into();
        if let Some(info) = st.members.get_mut(&id) {
            info.name = name.clone();
        }
        let post = Post {
            about: Some(id),
            ..notice(&room, &format!("{old} is now known as {new}"))
        };
        Ok((name, post))
    }

    /// Moves a member to `room`: a leave post for the old room and a join post for the new
    /// one; the member gets the new room's history first.
    pub fn join(&self, id: MemberId, room: &str) -> Result<(Arc<str>, Post, Post), String> {
        valid_name(room)?;
        let mut st = lock(&self.state);
        let info = st.members.get(&id).ok_or("you are not connected")?;
        let (name, old, member) = (info.name.clone(), info.room.clone(), info.handle.clone());
        if &*old == room {
            return Err(format!("you are already in {room}"));
        }
        remove_from_room(&mut st, &old, id);
        let new: Arc<str> = room.into();
        if let Some(info) = st.members.get_mut(&id) {
            info.room = new.clone();
        }
        add_to_room(&mut st, &new, id, &member, b"");
        drop(st);
        let left = notice(&old, &format!("{name} left {old} (joined {room})"));
        let joined = Post {
            about: Some(id),
            ..notice(&new, &format!("{name} joined {room}"))
        };
        Ok((new, left, joined))
    }

    /// The `/who` answer for a member's room.
    pub fn who(&self, id: MemberId) -> String {
        let st = lock(&self.state);
        let Some(room) = st.members.get(&id).map(|i| i.room.clone()) else {
            return String::new();
        };
        let Some(r) = st.rooms.get(&room) else {
            return String::new();
        };
        let mut names: Vec<&str> = r
            .members
            .keys()
            .filter_map(|m| st.members.get(m).map(|i| &*i.name))
            .collect();
        names.sort_unstable();
        format!("in {room} ({}): {}", names.len(), names.join(", "))
    }

    /// Queues a `*** text` line for one member only.
    pub fn tell(&self, id: MemberId, text: &str) {
        let st = lock(&self.state);
        if let Some(info) = st.members.get(&id) {
            info.handle
                .push(&[&Bytes::from(format!("*** {text}\n"))], 1);
        }
    }

    /// Removes a member; the post tells its room why. `None` if it was already dropped.
    pub fn leave(&self, id: MemberId, why: &str) -> Option<Post> {
        let mut st = lock(&self.state);
        let info = st.members.remove(&id)?;
        st.names.remove(&info.name.to_lowercase());
        remove_from_room(&mut st, &info.room, id);
        Some(notice(
            &info.room,
            &format!("{} left {} ({why})", info.name, info.room),
        ))
    }

    /// Hands `post` to `send` once per lane, with the members of its room in that lane (its
    /// writer included: the lane skips `post.from`), keeping chat lines in the history. Called
    /// under the lock, so every lane sees posts in the same order.
    pub fn deliver(&self, post: &Post, send: &mut dyn FnMut(usize, Shard)) {
        let mut st = lock(&self.state);
        let Some(room) = st.rooms.get_mut(&post.room) else {
            return;
        };
        if post.keep {
            remember(&mut room.history, &post.lines);
        }
        if !post.keep && room.members.len() > self.announce_max {
            // A crowd: N joins would cost N² lines. Only the member concerned hears.
            if let Some(id) = post.about
                && let Some(member) = room.members.get(&id)
            {
                send(self.lane_of(id), Arc::from([member.clone()]));
            }
            return;
        }
        let lanes = self.lanes;
        let shards = room.shards.get_or_insert_with(|| {
            let mut by_lane: Vec<Vec<Arc<Member>>> = vec![Vec::new(); lanes];
            for (&id, member) in &room.members {
                by_lane[(id % lanes as u64) as usize].push(member.clone());
            }
            by_lane.into_iter().map(Shard::from).collect()
        });
        for (lane, shard) in shards.iter().enumerate() {
            if !shard.is_empty() {
                send(lane, shard.clone());
            }
        }
    }

    /// Removes a member that fell too far behind; the notice for its room, if it was still
    /// there.
    pub fn drop_member(&self, id: MemberId) -> Option<Post> {
        let mut st = lock(&self.state);
        let info = st.members.remove(&id)?;
        st.names.remove(&info.name.to_lowercase());
        remove_from_room(&mut st, &info.room, id);
        Some(notice(
            &info.room,
            &format!("{} dropped (not reading)", info.name),
        ))
    }

    /// The lane a member is written by, the same in every room, so its lines keep order.
    pub fn lane_of(&self, id: MemberId) -> usize {
        (id % self.lanes as u64) as usize
    }
}

/// Puts a member in a room, sending it `greeting` and the room's history in one write.
fn add_to_room(
    st: &mut State,
    room: &Arc<str>,
    id: MemberId,
    member: &Arc<Member>,
    greeting: &[u8],
) {
    let room = st.rooms.entry(room.clone()).or_default();
    let mut first = BytesMut::from(greeting);
    for line in &room.history {
        first.extend_from_slice(line);
    }
    if !first.is_empty() {
        member.push(&[&first.freeze()], 1 + room.history.len());
    }
    room.members.insert(id, member.clone());
    room.shards = None;
}

fn remove_from_room(st: &mut State, room: &Arc<str>, id: MemberId) {
    if let Some(r) = st.rooms.get_mut(room) {
        r.members.remove(&id);
        r.shards = None;
        if r.members.is_empty() && r.history.is_empty() {
            st.rooms.remove(room);
        }
    }
}

/// Keeps the last [`HISTORY`] lines of `lines` (slices share the post's buffer).
fn remember(history: &mut VecDeque<Bytes>, lines: &Bytes) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(m: &Member) -> String {
        let items = m.drain().unwrap_or_default();
        items.iter().map(|b| String::from_utf8_lossy(b)).collect()
    }

    /// Delivers as the lanes do, inline: the names of the members dropped on the way.
    fn deliver(rooms: &Rooms, post: &Post) -> Vec<Arc<str>> {
        let mut shards = Vec::new();
        rooms.deliver(post, &mut |_, shard| shards.push(shard));
        let mut dropped = Vec::new();
        for member in shards.iter().flat_map(|s| s.iter()) {
            if Some(member.id()) != post.from && !member.push(&[&post.lines], post.count) {
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

    #[test]
    fn names_are_unique_and_history_is_bounded() {
        let rooms = Rooms::new(100, 100, 2);
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

    #[test]
    fn every_member_is_in_exactly_one_lane_and_the_writer_is_skipped() {
        let rooms = Rooms::new(100, 100, 3);
        let ids: Vec<MemberId> = (0..10).map(|_| rooms.enter(None).0).collect();
        let post = Post {
            from: Some(ids[0]),
            ..notice(&LOBBY.into(), "x")
        };
        let mut seen = Vec::new();
        rooms.deliver(&post, &mut |lane, shard| {
            for m in shard.iter() {
                assert_eq!(rooms.lane_of(m.id()), lane);
                seen.push(m.id());
            }
        });
        seen.sort_unstable();
        assert_eq!(seen, ids);
    }

    #[test]
    fn a_member_past_its_queue_is_dropped() {
        let rooms = Rooms::new(3, 100, 1);
        let (a, _, _, _) = rooms.enter(None);
        let (_, mb, bn, _) = rooms.enter(None);
        let post = Post {
            from: Some(a),
            ..notice(&LOBBY.into(), "x")
        };
        // user2's queue already holds its welcome line.
        assert!(deliver(&rooms, &post).is_empty());
        assert!(deliver(&rooms, &post).is_empty());
        assert_eq!(deliver(&rooms, &post), vec![bn]);
        assert!(mb.drain().is_none());
        assert!(!rooms.who(a).contains("user2"));
    }

    #[test]
    fn a_crowded_room_keeps_notices_to_the_member_concerned() {
        let rooms = Rooms::new(100, 2, 2);
        let (_, ma, _, _) = rooms.enter(None);
        let (b, mb, _, _) = rooms.enter(None);
        drain(&ma);
        drain(&mb);
        let (_, post) = rooms.rename(b, "bob").unwrap();
        deliver(&rooms, &post);
        assert_eq!(drain(&ma), "*** user2 is now known as bob\n");
        drain(&mb);
        let (_, mc, _, joined) = rooms.enter(None);
        deliver(&rooms, &joined);
        assert_eq!(drain(&ma), "", "three members are a crowd here");
        let (_, post) = rooms.rename(b, "bobby").unwrap();
        deliver(&rooms, &post);
        assert_eq!(drain(&mb), "*** bob is now known as bobby\n");
        assert_eq!(drain(&ma), "");
        assert!(drain(&mc).starts_with("*** welcome"));
    }
}
