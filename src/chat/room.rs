//! Who is here: members, their unique names, the rooms they are in and each room's recent
//! history. One lock guards it all; it is never held across an `.await`. Delivering a post
//! under it only hands the room's members to the fan-out's lanes: the writing happens outside
//! the lock.
//!
//! One concern per file under `room/`: `state` is what [`Rooms`] holds behind the lock and
//! the [`Config`] a broker sets; `members` is entering, names, moving between rooms and
//! leaving; `history` the lines a newcomer is given; `lanes` how a delivery is split into a
//! [`Route`] per lane. Each depends only on `state` and the ones listed before it.
mod history;
mod lanes;
mod members;
mod state;
#[cfg(test)]
mod testing;

pub use history::HISTORY;
pub use state::{Config, LOBBY, Rooms, Route, SPLIT_AT, Shard};
