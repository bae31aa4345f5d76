//! The one seam between a chat session and everyone else: a session hands each post to a
//! [`Fanout`], and the fan-out gets it to the room's members.
//!
//! [`Local`] delivers straight to the members connected to this process. The NATS backplane
//! ([`crate::chat::nats::Cluster`]) implements the same trait: it publishes each post on a
//! subject per room and, for posts arriving from other brokers, hands them to a [`Local`] of
//! its own. Posts are already whole, attributed, sanitised lines, so the line protocol clients
//! see does not change when brokers are joined. Names are the other thing brokers share: a
//! session tells its fan-out where each member is and what it is called ([`Fanout::placed`],
//! [`Fanout::released`]), asks it to reserve a new name beyond this broker
//! ([`Fanout::reserve`]) and who else is in a room ([`Fanout::elsewhere`]); for [`Local`]
//! these do nothing, as one broker's rooms already know.
//!
//! [`Local`] writes with lanes, one per CPU by default: a small room is written by one lane,
//! and a post for a room of 10,000 becomes one job per lane, so the sends (one system call
//! per member, most of a big room's cost) run on every CPU at once. Jobs reach every lane in
//! the order the posts were delivered, and a fence stops every lane until all have caught up
//! when a member may change lanes, so every member sees a room's lines in one order.
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use tokio::sync::{Barrier, Notify, mpsc};

// Sessions and backplanes speak in posts; they get the types from the seam they use.
pub use super::post::{MemberId, Post};
use super::room::{Rooms, Route, Shard};

/// Lane jobs waiting before senders are made to wait: about 256 posts' worth of lines (at
/// most 64 KiB each) pinned in memory, whatever the senders do.
const BACKLOG_HIGH: usize = 512;

/// A name's reservation beyond this broker: settles with the error to tell the member.
pub type Reservation = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// Gets posts to every member of their room.
pub trait Fanout: Send + Sync + 'static {
    /// Publishes `post` to its room. Never blocks: a member whose queue is full is dropped.
    fn publish(&self, post: Post);

    /// While the fan-out is behind, a future that resolves once it can take more posts; a
    /// session waits on it before reading more from its client, so a flood slows its sender
    /// instead of growing the broker. `None` when there is room.
    fn backlogged(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        None
    }

    /// Names of the members of `room` connected elsewhere (other brokers), for `/who`.
    fn elsewhere(&self, _room: &str) -> Vec<String> {
        Vec::new()
    }

    /// Member `id` is now called `name` and is in `room` (it came in, or moved).
    fn placed(&self, _id: MemberId, _name: &str, _room: &str) {}

    /// A member no longer uses `name` (it left, or took the name `keep`).
    fn released(&self, _name: &str, _keep: Option<&str>) {}

    /// Before member `id` in `room` takes the name `name`: a future that reserves it beyond
    /// this broker, with the error to tell the member when it cannot; `None` when there is
    /// nothing to reserve beyond this broker's own names.
    fn reserve(&self, _id: MemberId, _name: &str, _room: &str) -> Option<Reservation> {
        None
    }
}

/// The in-process fan-out: every member is connected to this broker.
pub struct Local {
    shared: Arc<Shared>,
}

struct Shared {
    rooms: Arc<Rooms>,
    lanes: Vec<mpsc::UnboundedSender<Work>>,
    backlog: AtomicUsize,
    drained: Notify,
    /// Also given the notices the fan-out makes itself (a member dropped), for a backplane.
    tap: OnceLock<Tap>,
}

/// Where a backplane takes the notices [`Local`] makes itself.
pub type Tap = Box<dyn Fn(&Post) + Send + Sync>;

/// What a lane is given, in order.
enum Work {
    /// A post for some of a room's members.
    Post(Job),
    /// Wait here until every lane has finished what came before.
    Fence(Arc<Barrier>),
}

/// One post for one lane's members of a room.
struct Job {
    lines: Bytes,
    count: usize,
    from: Option<MemberId>,
    members: Shard,
}

impl Local {
    /// A fan-out over the members of `rooms`, with one writer task per lane of `rooms`.
    /// Must be called within a tokio runtime.
    pub fn new(rooms: Arc<Rooms>) -> Self {
        let mut lanes = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..rooms.lanes() {
            let (tx, rx) = mpsc::unbounded_channel();
            lanes.push(tx);
            receivers.push(rx);
        }
        let shared = Arc::new(Shared {
            rooms,
            lanes,
            backlog: AtomicUsize::new(0),
            drained: Notify::new(),
            tap: OnceLock::new(),
        });
        for rx in receivers {
            tokio::spawn(lane(rx, Arc::downgrade(&shared)));
        }
        Local { shared }
    }

    /// Hands `tap` every notice this fan-out makes itself (a member dropped for not
    /// reading), so a backplane tells the other brokers too. Set once; later calls are ignored.
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.shared.tap.set(tap);
    }
}

impl Fanout for Local {
    fn publish(&self, post: Post) {
        self.shared.publish(post);
    }

    fn backlogged(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        let s = &self.shared;
        if s.backlog.load(Ordering::Acquire) <= BACKLOG_HIGH {
            return None;
        }
        Some(Box::pin(async move {
            loop {
                let drained = s.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if s.backlog.load(Ordering::Acquire) <= BACKLOG_HIGH {
                    return;
                }
                drained.await;
            }
        }))
    }
}

impl Shared {
    fn publish(&self, post: Post) {
        self.rooms.deliver(&post, &mut |route| match route {
            Route::Lane(lane, members) => self.hand(
                lane,
                Work::Post(Job {
                    lines: post.lines.clone(),
                    count: post.count,
                    from: post.from,
                    members,
                }),
            ),
            Route::Fence => {
                let barrier = Arc::new(Barrier::new(self.lanes.len()));
                for lane in 0..self.lanes.len() {
                    self.hand(lane, Work::Fence(barrier.clone()));
                }
            }
        });
    }

    fn hand(&self, lane: usize, work: Work) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let gauge = &crate::metrics::chat().backlog;
        gauge.inc();
        if self.lanes[lane].send(work).is_err() {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
            gauge.dec();
        }
    }
}

/// Jobs a lane takes at once: a lane that fell behind sends each member everything that
/// piled up in one write, instead of one write per post (at most one vectored write's worth).
const BATCH: usize = 64;

/// Writes each job to its members, in order. Jobs that piled up while the lane was busy go
/// out together: consecutive jobs for the same members become one write per member. A member
/// whose queue overflows is dropped and its room told; the notice goes through the lanes like
/// any post.
async fn lane(mut inbox: mpsc::UnboundedReceiver<Work>, shared: Weak<Shared>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut dropped = Vec::new();
    while inbox.recv_many(&mut batch, BATCH).await > 0 {
        let mut rest = &batch[..];
        while !rest.is_empty() {
            // The posts up to the next fence, then the fence.
            let upto = rest
                .iter()
                .position(|w| matches!(w, Work::Fence(_)))
                .unwrap_or(rest.len());
            let jobs: Vec<&Job> = rest[..upto]
                .iter()
                .filter_map(|w| match w {
                    Work::Post(job) => Some(job),
                    Work::Fence(_) => None,
                })
                .collect();
            for group in jobs.chunk_by(|a, b| Arc::ptr_eq(&a.members, &b.members)) {
                write_group(group, &mut dropped).await;
            }
            if let Some(Work::Fence(barrier)) = rest.get(upto) {
                barrier.wait().await;
            }
            rest = rest.get(upto + 1..).unwrap_or(&[]);
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let done = batch.len();
        batch.clear();
        crate::metrics::chat().backlog.dec_by(done as i64);
        if shared.backlog.fetch_sub(done, Ordering::AcqRel) - done <= BACKLOG_HIGH {
            shared.drained.notify_waiters();
        }
        for id in dropped.drain(..) {
            if let Some(notice) = shared.rooms.drop_member(id) {
                if let Some(tap) = shared.tap.get() {
                    tap(&notice);
                }
                shared.publish(notice);
            }
        }
    }
}

/// Writes consecutive posts for the same members, one write per member; collects the members
/// that fell too far behind.
async fn write_group(group: &[&Job], dropped: &mut Vec<MemberId>) {
    let mut posts = Vec::with_capacity(group.len());
    let now = tokio::time::Instant::now();
    for member in group[0].members.iter() {
        for job in group.iter().filter(|j| j.from != Some(member.id())) {
            posts.push((&job.lines, job.count));
        }
        if !member.push(&posts, now) {
            dropped.push(member.id());
        }
        posts.clear();
        // A big room is thousands of sends: let the worker's other tasks in between.
        tokio::task::consume_budget().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::post::notice;
    use crate::chat::room::{Config, LOBBY};

    #[tokio::test(flavor = "current_thread")]
    async fn senders_wait_while_the_lanes_are_behind_and_go_on_once_they_catch_up() {
        let rooms = Arc::new(Rooms::new(Config {
            queue: crate::chat::queue::QueueLimits::lines(100_000),
            announce_max: 100,
            lanes: 2,
            split_at: 2,
        }));
        let (_, ma, _, _) = rooms.enter(None);
        let (_, mb, _, _) = rooms.enter(None);
        let fanout = Local::new(rooms);
        assert!(fanout.backlogged().is_none());
        // On one thread the lanes cannot run until this task yields: the posts pile up.
        for _ in 0..BACKLOG_HIGH {
            fanout.publish(Post {
                keep: true,
                ..notice(&LOBBY.into(), "x")
            });
        }
        let wait = fanout
            .backlogged()
            .expect("a backlog past the mark makes senders wait");
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .expect("the lanes catch up");
        assert!(fanout.backlogged().is_none());
        // Both lanes wrote: each member (one per lane) has its lines queued.
        for m in [ma, mb] {
            assert!(m.drain().unwrap().len() > 1);
        }
    }
}
