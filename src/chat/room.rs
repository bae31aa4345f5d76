//! Who is here: members, their unique names, the rooms they are in and each room's recent
//! history. One lock guards it all; it is never held across an `.await`. Delivering a post
//! under it only hands the room's members to the fan-out's lanes: the writing happens outside
//! the lock.
//!
//! A room is written by one lane (rooms take turns over the lanes) until it has
//! [`Config::split_at`] members; then each member is written by the lane its id picks, so a line for a crowd is
//! sent from every CPU at once. A member whose lane may have changed (it joined another room,
//! or its room was split or merged) must not get a newer line before an older one: the next
//! delivery is then preceded by a [`Route::Fence`], which every lane passes only when all of
//! them have finished what came before it.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

use super::line::valid_name;
use super::post::{MemberId, Post, notice};
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

/// Default members from which a room is split over every lane.
pub const SPLIT_AT: usize = 1024;

/// How a broker's rooms behave.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Lines a member may fall behind before it is dropped.
    pub queue: usize,
    /// Rooms of more members than this leave join, leave and rename notices out.
    pub announce_max: usize,
    /// Writers sending posts to members.
    pub lanes: usize,
    /// Members from which a room is split over every lane (and below half of which it goes
    /// back to one): a crowd's line then leaves from every CPU, while a small room's takes
    /// one lane and leaves the other CPUs to everything else.
    pub split_at: usize,
}

/// The members of one lane of a room, as the room was when a post was delivered.
pub type Shard = Arc<[Arc<Member>]>;

/// What a delivery hands the fan-out, in order.
#[derive(Debug)]
pub enum Route {
    /// Finish everything handed over before this, on every lane, before anything after it.
    Fence,
    /// The post goes to these members, written by this lane.
    Lane(usize, Shard),
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<MemberId, Arc<Member>>,
    history: VecDeque<Bytes>,
    /// The lane writing the whole room while it is not split.
    lane: usize,
    /// Whether the members are spread over every lane by id.
    split: bool,
    /// The members by lane, rebuilt on the first post after the membership changed.
    shards: Option<Vec<(usize, Shard)>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: MemberId,
    next_default: u64,
    /// Lower-cased name → member, so `Alice` cannot pose as `alice`.
    names: HashMap<String, MemberId>,
    members: HashMap<MemberId, Info>,
    rooms: HashMap<Arc<str>, Room>,
    /// Rooms created so far, to give each new one the next lane.
    rooms_made: usize,
    /// Some member's lane may have changed since the last delivery.
    fence: bool,
}

/// Every member and room of one broker.
#[derive(Debug)]
pub struct Rooms {
    state: Mutex<State>,
    config: Config,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole chat down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    /// No members yet.
    pub fn new(config: Config) -> Self {
        Rooms {
            state: Mutex::new(State::default()),
            config: Config {
                lanes: config.lanes.max(1),
                split_at: config.split_at.max(1),
                ..config
            },
        }
    }

    /// How many lanes write to members.
    pub fn lanes(&self) -> usize {
        self.config.lanes
    }

    /// A new member with a default name (`user1`, ...) in the lobby, writing to `sink`. It is
    /// greeted and given the lobby's history; the returned post announces it to the others.
    pub fn enter(&self, sink: Option<Arc<Conn>>) -> (MemberId, Arc<Member>, Arc<str>, Post) {
        let mut st = lock(&self.state);
        st.next_id += 1;
        let id = st.next_id;
        let member = Arc::new(Member::new(id, self.config.queue, sink));
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
        add_to_room(
            &mut st,
            &self.config,
            &lobby,
            id,
            &member,
            welcome.as_bytes(),
        );
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
        remove_from_room(&mut st, &self.config, &old, id);
        let new: Arc<str> = room.into();
        if let Some(info) = st.members.get_mut(&id) {
            info.room = new.clone();
        }
        add_to_room(&mut st, &self.config, &new, id, &member, b"");
        // Lines of the old room may still be on their way to it through another lane.
        st.fence = true;
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
        let info = self.remove(id)?;
        Some(notice(
            &info.room,
            &format!("{} left {} ({why})", info.name, info.room),
        ))
    }

    /// Hands `post` to `send` as one route per lane writing members of its room (its writer
    /// included: the lane skips `post.from`), after a fence if some member's lane may have
    /// changed, and keeps chat lines in the history. Called under the lock, so every lane sees
    /// posts in the same order.
    pub fn deliver(&self, post: &Post, send: &mut dyn FnMut(Route)) {
        let mut st = lock(&self.state);
        if std::mem::take(&mut st.fence) && self.config.lanes > 1 {
            send(Route::Fence);
        }
        let Some(room) = st.rooms.get_mut(&post.room) else {
            return;
        };
        if post.keep {
            remember(&mut room.history, &post.lines);
        }
        let lanes = self.config.lanes;
        if !post.keep && room.members.len() > self.config.announce_max {
            // A crowd: N joins would cost N² lines. Only the member concerned hears.
            if let Some(id) = post.about
                && let Some(member) = room.members.get(&id)
            {
                let lane = if room.split {
                    lane_by_id(id, lanes)
                } else {
                    room.lane
                };
                send(Route::Lane(lane, Arc::from([member.clone()])));
            }
            return;
        }
        let shards = room.shards.get_or_insert_with(|| {
            if !room.split {
                let all: Shard = room.members.values().cloned().collect();
                return vec![(room.lane, all)];
            }
            let mut by_lane: Vec<Vec<Arc<Member>>> = vec![Vec::new(); lanes];
            for (&id, member) in &room.members {
                by_lane[lane_by_id(id, lanes)].push(member.clone());
            }
            by_lane
                .into_iter()
                .enumerate()
                .map(|(lane, m)| (lane, Shard::from(m)))
                .collect()
        });
        for (lane, shard) in shards.iter() {
            if !shard.is_empty() {
                send(Route::Lane(*lane, shard.clone()));
            }
        }
    }

    /// Removes a member that fell too far behind; the notice for its room, if it was still
    /// there.
    pub fn drop_member(&self, id: MemberId) -> Option<Post> {
        let info = self.remove(id)?;
        Some(notice(
            &info.room,
            &format!("{} dropped (not reading)", info.name),
        ))
    }

    /// Takes a member out of its room and frees its name.
    fn remove(&self, id: MemberId) -> Option<Info> {
        let mut st = lock(&self.state);
        let info = st.members.remove(&id)?;
        st.names.remove(&info.name.to_lowercase());
        remove_from_room(&mut st, &self.config, &info.room, id);
        Some(info)
    }
}

/// The lane writing a member of a split room.
fn lane_by_id(id: MemberId, lanes: usize) -> usize {
    (id % lanes as u64) as usize
}

/// Puts a member in a room, sending it `greeting` and the room's history in one write.
fn add_to_room(
    st: &mut State,
    config: &Config,
    room: &Arc<str>,
    id: MemberId,
    member: &Arc<Member>,
    greeting: &[u8],
) {
    if !st.rooms.contains_key(room) {
        st.rooms_made += 1;
    }
    let lane = st.rooms_made % config.lanes;
    let room = st.rooms.entry(room.clone()).or_insert_with(|| Room {
        lane,
        ..Room::default()
    });
    let mut first = BytesMut::from(greeting);
    for line in &room.history {
        first.extend_from_slice(line);
    }
    if !first.is_empty() {
        member.push(&[&first.freeze()], 1 + room.history.len());
    }
    room.members.insert(id, member.clone());
    room.shards = None;
    if !room.split && room.members.len() >= config.split_at {
        room.split = true;
        st.fence = true;
    }
}

fn remove_from_room(st: &mut State, config: &Config, room: &Arc<str>, id: MemberId) {
    if let Some(r) = st.rooms.get_mut(room) {
        r.members.remove(&id);
        r.shards = None;
        if r.split && r.members.len() < config.split_at / 2 {
            r.split = false;
            st.fence = true;
        }
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

    fn new_rooms(queue: usize, announce_max: usize, lanes: usize) -> Rooms {
        Rooms::new(Config {
            queue,
            announce_max,
            lanes,
            split_at: SPLIT_AT,
        })
    }

    /// Delivers as the lanes do, inline: the names of the members dropped on the way.
    fn deliver(rooms: &Rooms, post: &Post) -> Vec<Arc<str>> {
        let mut shards = Vec::new();
        rooms.deliver(post, &mut |route| {
            if let Route::Lane(_, shard) = route {
                shards.push(shard);
            }
        });
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

    /// The routes of one delivery to the lobby: (fenced first, lane → member ids).
    fn routes(rooms: &Rooms) -> (bool, Vec<(usize, Vec<MemberId>)>) {
        let post = Post {
            keep: true,
            ..notice(&LOBBY.into(), "x")
        };
        let (mut fenced, mut lanes) = (false, Vec::new());
        rooms.deliver(&post, &mut |route| match route {
            Route::Fence => fenced = lanes.is_empty(),
            Route::Lane(lane, shard) => lanes.push((lane, shard.iter().map(|m| m.id()).collect())),
        });
        (fenced, lanes)
    }

    #[test]
    fn a_small_room_takes_one_lane_and_a_crowd_every_lane_with_a_fence_between() {
        let rooms = new_rooms(100, 100, 3);
        let mut ids: Vec<MemberId> = (0..10).map(|_| rooms.enter(None).0).collect();
        let (_, small) = routes(&rooms);
        assert_eq!(small.len(), 1, "one lane for a small room");
        ids.extend((10..SPLIT_AT).map(|_| rooms.enter(None).0));
        let (fenced, crowd) = routes(&rooms);
        assert!(fenced, "members changed lanes: a fence comes first");
        assert_eq!(crowd.len(), 3, "a crowd is written from every lane");
        let mut seen: Vec<MemberId> = Vec::new();
        for (lane, members) in &crowd {
            assert!(members.iter().all(|id| lane_by_id(*id, 3) == *lane));
            seen.extend(members);
        }
        seen.sort_unstable();
        assert_eq!(seen, ids, "every member exactly once");
        assert!(!routes(&rooms).0, "no fence while nobody moves");
        rooms.join(ids[0], "elsewhere").unwrap();
        assert!(
            routes(&rooms).0,
            "a member who changes rooms may change lanes"
        );
    }

    #[test]
    fn a_member_past_its_queue_is_dropped() {
        let rooms = new_rooms(3, 100, 1);
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
        let rooms = new_rooms(100, 2, 2);
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
