//! Uploads under way on a files server, so that a client coming back after a broken
//! connection can take its file over from the connection it left behind.
//!
//! A connection cut by a reset that reached only the client, or by a link that went down,
//! stays open on the server (nothing arrives to tell it otherwise) and keeps the partial
//! file locked until its idle timeout; the client's retry would be refused as "being
//! received by someone else" for minutes. A new upload of the same name from the same
//! address therefore ends the older one (which records what it verified, so the new one
//! resumes from there). Another address still gets the refusal: two users sending one name
//! at once must not cut each other off.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// The uploads under way, by name under the root.
#[derive(Default)]
pub struct Uploads {
    by_name: Arc<Mutex<HashMap<String, Entry>>>,
    next: AtomicU64,
}

struct Entry {
    id: u64,
    from: Option<IpAddr>,
    stop: CancellationToken,
}

/// One upload's place in [`Uploads`]; leaves it when dropped.
pub struct Registered {
    by_name: Arc<Mutex<HashMap<String, Entry>>>,
    name: String,
    id: u64,
    /// Cancelled when a newer upload of the same name from the same address takes over.
    pub stop: CancellationToken,
}

impl Uploads {
    /// Registers an upload of `name` from `from`, first stopping an older one of the same
    /// name from the same address. Returns whether one was stopped, and the registration.
    pub fn begin(&self, name: &str, from: Option<IpAddr>) -> (bool, Registered) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stop = CancellationToken::new();
        let mut map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        let mut took_over = false;
        match map.get(name) {
            Some(old) if old.from == from && from.is_some() => {
                old.stop.cancel();
                took_over = true;
            }
            // Someone else's: leave it; opening the file will say it is busy.
            Some(_) => {}
            None => {}
        }
        if took_over || !map.contains_key(name) {
            let entry = Entry {
                id,
                from,
                stop: stop.clone(),
            };
            map.insert(name.to_string(), entry);
        }
        drop(map);
        let reg = Registered {
            by_name: self.by_name.clone(),
            name: name.to_string(),
            id,
            stop,
        };
        (took_over, reg)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&self.name).is_some_and(|e| e.id == self.id) {
            map.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_address_takes_over_and_another_does_not() {
        let ups = Uploads::default();
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let b: IpAddr = "10.0.0.3".parse().unwrap();
        let (_, first) = ups.begin("big", Some(a));
        let (took, other) = ups.begin("big", Some(b));
        assert!(!took && !first.stop.is_cancelled());
        drop(other);
        let (took, second) = ups.begin("big", Some(a));
        assert!(took && first.stop.is_cancelled() && !second.stop.is_cancelled());
        drop(first); // the older one leaving must not remove the newer one's entry
        let (took, _) = ups.begin("big", Some(a));
        assert!(took && second.stop.is_cancelled());
    }
}
