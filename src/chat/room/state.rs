//! What the rooms are made of: the one lock's [`State`] (members by id and by name, rooms by
//! name), each [`Room`]'s members, history and lanes, and the [`Config`] a broker sets.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;

use crate::chat::gate::Gate;
use crate::chat::post::MemberId;
use crate::chat::queue::{Member, QueueLimits};

/// The room everyone starts in.
pub const LOBBY: &str = "lobby";

/// Default members from which a room is split over every lane.
pub const SPLIT_AT: usize = 1024;

/// How a broker's rooms behave.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// When a member is behind (its room's senders wait) and when it is dropped.
    pub queue: QueueLimits,
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

/// One member, as the rooms know it.
#[derive(Debug)]
pub(super) struct Info {
    pub(super) name: Arc<str>,
    pub(super) room: Arc<str>,
    pub(super) handle: Arc<Member>,
}

/// One line of a room's history (kept and replayed by the history module).
#[derive(Debug)]
pub(super) struct Said {
    /// When it was said (when this broker, or the one that stored it, took it).
    pub(super) at: SystemTime,
    /// The line as members got it, newline included.
    pub(super) line: Bytes,
}

/// One room.
#[derive(Debug, Default)]
pub(super) struct Room {
    pub(super) members: HashMap<MemberId, Arc<Member>>,
    pub(super) history: VecDeque<Said>,
    /// The lane writing the whole room while it is not split.
    pub(super) lane: usize,
    /// Whether the members are spread over every lane by id.
    pub(super) split: bool,
    /// The members by lane, rebuilt on the first post after the membership changed.
    pub(super) shards: Option<Vec<(usize, Shard)>>,
    /// Closed while some member is behind: the room's senders then wait.
    pub(super) gate: Arc<Gate>,
}

/// Everything behind the one lock.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) next_id: MemberId,
    pub(super) next_default: u64,
    /// Lower-cased name → member, so `Alice` cannot pose as `alice`.
    pub(super) names: HashMap<String, MemberId>,
    pub(super) members: HashMap<MemberId, Info>,
    pub(super) rooms: HashMap<Arc<str>, Room>,
    /// Rooms created so far, to give each new one the next lane.
    pub(super) rooms_made: usize,
    /// Some member's lane may have changed since the last delivery.
    pub(super) fence: bool,
}

impl State {
    /// The room named `room`, made (and given the next lane) if there is none yet.
    pub(super) fn open_room(&mut self, config: &Config, room: &Arc<str>) -> &mut Room {
        if !self.rooms.contains_key(room) {
            self.rooms_made += 1;
            crate::metrics::chat().rooms.inc();
        }
        let lane = self.rooms_made % config.lanes;
        self.rooms.entry(room.clone()).or_insert_with(|| Room {
            lane,
            ..Room::default()
        })
    }
}

/// Every member and room of one broker.
#[derive(Debug)]
pub struct Rooms {
    state: Mutex<State>,
    pub(super) config: Config,
    /// Appended to default names (`user1` + suffix): brokers joined by a backplane each have
    /// their own, so their default names never clash.
    pub(super) default_suffix: String,
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
            default_suffix: String::new(),
        }
    }

    /// The same rooms with default names `user1SUFFIX`, `user2SUFFIX`, ...
    pub fn with_default_suffix(mut self, suffix: &str) -> Self {
        self.default_suffix = suffix.to_string();
        self
    }

    /// How many lanes write to members.
    pub fn lanes(&self) -> usize {
        self.config.lanes
    }

    /// The state, locked.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the whole chat down with a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
