//! `--max-conns-per-user`: how many connections each logged-in user has open.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Failure;

/// Connections open per user, against `--max-conns-per-user`.
pub(super) struct PerUser {
    max: usize,
    open: Counts,
}

type Counts = Arc<Mutex<HashMap<String, usize>>>;

/// One user's place among their open connections; dropping it frees it.
pub(super) struct UserSlot(Option<(Counts, String)>);

impl PerUser {
    /// At most `max` connections per user (0: no cap).
    pub(super) fn new(max: usize) -> PerUser {
        PerUser {
            max,
            open: Counts::default(),
        }
    }

    /// A place for one more of `user`'s connections, if under the cap.
    pub(super) fn take(&self, user: Option<&str>) -> Result<UserSlot, Failure> {
        let (Some(user), true) = (user, self.max > 0) else {
            return Ok(UserSlot(None));
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user.to_string()).or_insert(0);
        if *n >= self.max {
            return Err(Failure::UserCap(user.to_string(), *n));
        }
        *n += 1;
        Ok(UserSlot(Some((self.open.clone(), user.to_string()))))
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        if let Some((open, user)) = self.0.take() {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = open.get_mut(&user) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&user);
                }
            }
        }
    }
}
