//! Which lane writes whom: delivering a post under the rooms' lock only hands the room's
//! members to the fan-out's lanes, as [`Route`]s; the writing happens outside the lock.
//!
//! A room is written by one lane (rooms take turns over the lanes) until it has
//! [`Config::split_at`] members; then each member is written by the lane its id picks, so a
//! line for a crowd is sent from every CPU at once. A member whose lane may have changed (it
//! joined another room, or its room was split or merged) must not get a newer line before an
//! older one: the next delivery is then preceded by a [`Route::Fence`], which every lane
//! passes only when all of them have finished what came before it.
use std::sync::Arc;

use super::history::remember;
use super::state::{Config, Room, Rooms, Route, Shard};
use crate::chat::post::{MemberId, Post};
use crate::chat::queue::Member;

impl Rooms {
    /// Hands `post` to `send` as one route per lane writing members of its room (its writer
    /// included: the lane skips `post.from`), after a fence if some member's lane may have
    /// changed, and keeps chat lines in the history. Called under the lock, so every lane sees
    /// posts in the same order.
    pub fn deliver(&self, post: &Post, send: &mut dyn FnMut(Route)) {
        let mut st = self.lock();
        if std::mem::take(&mut st.fence) && self.config.lanes > 1 {
            send(Route::Fence);
        }
        let Some(room) = st.rooms.get_mut(&post.room) else {
            return;
        };
        if post.keep {
            remember(&mut room.history, &post.lines, std::time::SystemTime::now());
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
}

impl Room {
    /// After a member came in: the shards are stale, and a room reaching
    /// [`Config::split_at`] members is split over every lane. True when members may have
    /// changed lanes (a fence is due).
    pub(super) fn grown(&mut self, config: &Config) -> bool {
        self.shards = None;
        if !self.split && self.members.len() >= config.split_at {
            self.split = true;
            return true;
        }
        false
    }

    /// After a member left: the shards are stale, and a split room below half of
    /// [`Config::split_at`] members goes back to one lane. True when members may have
    /// changed lanes (a fence is due).
    pub(super) fn shrunk(&mut self, config: &Config) -> bool {
        self.shards = None;
        if self.split && self.members.len() < config.split_at / 2 {
            self.split = false;
            return true;
        }
        false
    }
}

/// The lane writing a member of a split room.
fn lane_by_id(id: MemberId, lanes: usize) -> usize {
    (id % lanes as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::post::notice;
    use crate::chat::room::state::{LOBBY, SPLIT_AT};
    use crate::chat::room::testing::{deliver, drain, new_rooms};

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
