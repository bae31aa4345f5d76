//! Who is who: members come in with a default name, rename themselves (names are unique
//! regardless of case), move between rooms and leave or are dropped. Every change answers
//! with the [`Post`] that tells their room.
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::history::replay;
use super::state::{Config, Info, LOBBY, Rooms, State};
use crate::chat::gate::Gate;
use crate::chat::line::{name_keys, valid_name};
use crate::chat::post::{MemberId, Post, notice};
use crate::chat::queue::Member;
use crate::server::Conn;

impl Rooms {
    /// A new member with a default name (`user1`, ...) in the lobby, writing to `sink`. It is
    /// greeted and given the lobby's history; the returned post announces it to the others.
    pub fn enter(&self, sink: Option<Arc<Conn>>) -> (MemberId, Arc<Member>, Arc<str>, Post) {
        let (id, member, name, post, _) = self.enter_as(self.new_id(), sink, None, LOBBY);
        (id, member, name, post)
    }

    /// A fresh member id, for a member about to [`enter_as`](Self::enter_as) (its name may
    /// have to be reserved beyond this broker first, under this id).
    pub fn new_id(&self) -> MemberId {
        let mut st = self.lock();
        st.next_id += 1;
        st.next_id
    }

    /// Member `id` comes in under `name` (or a default name, `user1`, ... when it gives none,
    /// or that one is taken) in `room`, writing to `sink`. It is greeted and given the room's
    /// history; the post announces it to the others; the last part says why `name` was not
    /// given, if it was not. `room` must be a valid name.
    pub fn enter_as(
        &self,
        id: MemberId,
        sink: Option<Arc<Conn>>,
        name: Option<&str>,
        room: &str,
    ) -> (MemberId, Arc<Member>, Arc<str>, Post, Option<String>) {
        let mut st = self.lock();
        let member = Arc::new(Member::new(id, self.config.queue, sink));
        let free = |st: &State, n: &str| !name_keys(n).iter().any(|k| st.names.contains_key(k));
        let mut refused = None;
        let wanted = match name {
            Some(n) => match valid_name(n) {
                Ok(()) if free(&st, n) => Some(n),
                Ok(()) => {
                    refused = Some(format!("the name {n} is taken (or looks like one that is)"));
                    None
                }
                Err(e) => {
                    refused = Some(e);
                    None
                }
            },
            None => None,
        };
        let name: Arc<str> = match wanted {
            Some(n) => n.into(),
            None => loop {
                st.next_default += 1;
                let candidate = format!("user{}{}", st.next_default, self.default_suffix);
                if free(&st, &candidate) {
                    break candidate.into();
                }
            },
        };
        for k in name_keys(&name) {
            st.names.insert(k, id);
        }
        let room: Arc<str> = room.into();
        let welcome = format!(
            "*** welcome, you are {name} in {room}; commands: /nick NAME, /who, /join ROOM, /me ACTION, /quit\n"
        );
        crate::metrics::chat().members.inc();
        st.members.insert(
            id,
            Info {
                name: name.clone(),
                room: room.clone(),
                handle: member.clone(),
            },
        );
        add_to_room(
            &mut st,
            &self.config,
            &room,
            id,
            &member,
            welcome.as_bytes(),
        );
        drop(st);
        let post = Post {
            from: Some(id),
            ..notice(&room, &format!("{name} joined {room}"))
        };
        (id, member, name, post, refused)
    }

    /// Renames a member. The member's own confirmation is queued for it at once, so it comes
    /// before any later reply that uses the new name (a `/who`, say); the post tells the rest
    /// of its room.
    pub fn rename(&self, id: MemberId, new: &str) -> Result<(Arc<str>, Post), String> {
        valid_name(new)?;
        let mut st = self.lock();
        let keys = name_keys(new);
        let info = st.members.get(&id).ok_or("you are not connected")?;
        let (old, room) = (info.name.clone(), info.room.clone());
        if keys
            .iter()
            .any(|k| st.names.get(k).is_some_and(|&other| other != id))
        {
            return Err(format!(
                "the name {new} is taken (or looks like one that is)"
            ));
        }
        for k in name_keys(&old) {
            st.names.remove(&k);
        }
        for k in keys {
            st.names.insert(k, id);
        }
        let name: Arc<str> = new.into();
        let said = format!("{old} is now known as {new}");
        if let Some(info) = st.members.get_mut(&id) {
            info.name = name.clone();
            info.handle.push(
                &[(&Bytes::from(format!("*** {said}\n")), 1)],
                Instant::now(),
            );
        }
        let post = Post {
            from: Some(id),
            ..notice(&room, &said)
        };
        Ok((name, post))
    }

    /// Moves a member to `room`: a leave post for the old room, a join post for the new one,
    /// and the new room's gate (its session reads only while it is open); the member gets the
    /// new room's history first.
    pub fn join(
        &self,
        id: MemberId,
        room: &str,
    ) -> Result<(Arc<str>, Post, Post, Arc<Gate>), String> {
        valid_name(room)?;
        let mut st = self.lock();
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
        let gate = st
            .rooms
            .get(&new)
            .map(|r| r.gate.clone())
            .unwrap_or_default();
        // Lines of the old room may still be on their way to it through another lane.
        st.fence = true;
        drop(st);
        let left = notice(&old, &format!("{name} left {old} (joined {room})"));
        let joined = Post {
            about: Some(id),
            ..notice(&new, &format!("{name} joined {room}"))
        };
        Ok((new, left, joined, gate))
    }

    /// The `/who` answer for a member's room, with `others` (members of the room elsewhere,
    /// on other brokers) listed too.
    pub fn who(&self, id: MemberId, others: &dyn Fn(&str) -> Vec<String>) -> String {
        let st = self.lock();
        let Some(room) = st.members.get(&id).map(|i| i.room.clone()) else {
            return String::new();
        };
        let Some(r) = st.rooms.get(&room) else {
            return String::new();
        };
        let elsewhere = others(&room);
        let mut names: Vec<&str> = r
            .members
            .keys()
            .filter_map(|m| st.members.get(m).map(|i| &*i.name))
            .chain(elsewhere.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        format!("in {room} ({}): {}", names.len(), names.join(", "))
    }

    /// Queues a `*** text` line for one member only.
    pub fn tell(&self, id: MemberId, text: &str) {
        let st = self.lock();
        if let Some(info) = st.members.get(&id) {
            info.handle.push(
                &[(&Bytes::from(format!("*** {text}\n")), 1)],
                Instant::now(),
            );
        }
    }

    /// Queues a `*** text` line for every member of this broker.
    pub fn tell_all(&self, text: &str) {
        let line = Bytes::from(format!("*** {text}\n"));
        let st = self.lock();
        let now = Instant::now();
        for info in st.members.values() {
            info.handle.push(&[(&line, 1)], now);
        }
    }

    /// A member's name and room, if it is still here.
    pub fn whereabouts(&self, id: MemberId) -> Option<(Arc<str>, Arc<str>)> {
        let st = self.lock();
        st.members
            .get(&id)
            .map(|i| (i.name.clone(), i.room.clone()))
    }

    /// Every member of this broker: id, name and room.
    pub fn roster(&self) -> Vec<(MemberId, Arc<str>, Arc<str>)> {
        let st = self.lock();
        st.members
            .iter()
            .map(|(&id, i)| (id, i.name.clone(), i.room.clone()))
            .collect()
    }

    /// Removes a member; the post tells its room why. `None` if it was already dropped.
    pub fn leave(&self, id: MemberId, why: &str) -> Option<Post> {
        let info = self.remove(id)?;
        Some(notice(
            &info.room,
            &format!("{} left {} ({why})", info.name, info.room),
        ))
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
        let mut st = self.lock();
        let info = st.members.remove(&id)?;
        crate::metrics::chat().members.dec();
        for k in name_keys(&info.name) {
            st.names.remove(&k);
        }
        remove_from_room(&mut st, &self.config, &info.room, id);
        Some(info)
    }
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
    let room = st.open_room(config, room);
    member.set_gate(room.gate.clone());
    replay(member, greeting, &room.history);
    room.members.insert(id, member.clone());
    if room.grown(config) {
        st.fence = true;
    }
}

fn remove_from_room(st: &mut State, config: &Config, room: &Arc<str>, id: MemberId) {
    if let Some(r) = st.rooms.get_mut(room) {
        r.members.remove(&id);
        if r.shrunk(config) {
            st.fence = true;
        }
        if r.members.is_empty() && r.history.is_empty() {
            st.rooms.remove(room);
            crate::metrics::chat().rooms.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::chat::post::{Post, notice};
    use crate::chat::room::state::LOBBY;
    use crate::chat::room::testing::{deliver, new_rooms};

    #[tokio::test(start_paused = true)]
    async fn a_member_behind_closes_the_gate_and_is_dropped_only_once_it_stalls() {
        let rooms = new_rooms(3, 100, 1);
        let (a, ma, _, _) = rooms.enter(None);
        let (_, mb, bn, _) = rooms.enter(None);
        let post = Post {
            from: Some(a),
            ..notice(&LOBBY.into(), "x")
        };
        let gate = ma.gate().unwrap();
        assert!(gate.is_open());
        // user2's queue already holds its welcome line; past three lines it is behind.
        for _ in 0..5 {
            assert!(deliver(&rooms, &post).is_empty(), "behind is not dropped");
        }
        assert!(!gate.is_open(), "a member behind closes its room's gate");
        // It stops draining: past --max-lag its next delivery drops it, and the gate opens.
        tokio::time::advance(std::time::Duration::from_secs(11)).await;
        assert_eq!(deliver(&rooms, &post), vec![bn]);
        assert!(mb.drain().is_none());
        assert!(gate.is_open());
        assert!(!rooms.who(a, &|_| Vec::new()).contains("user2"));
    }

    #[test]
    fn a_member_that_drains_opens_the_gate_again() {
        let rooms = new_rooms(3, 100, 1);
        let (a, ma, _, _) = rooms.enter(None);
        let (_, mb, _, _) = rooms.enter(None);
        let post = Post {
            from: Some(a),
            ..notice(&LOBBY.into(), "x")
        };
        for _ in 0..5 {
            deliver(&rooms, &post);
        }
        assert!(!ma.gate().unwrap().is_open());
        assert_eq!(mb.drain().unwrap().len(), 6);
        assert!(ma.gate().unwrap().is_open());
    }
}
