//! WebDAV write locks (class 2, RFC 4918 §6-§9.11), which file managers (davfs2, Finder,
//! Windows) take before they write: held in memory, exclusive or shared, on one resource or
//! a whole tree (depth infinity), each for a bounded time. A request that changes a locked
//! resource must name the lock's token in its `If` header, else it is refused with
//! `423 Locked`.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::xml::escape;

/// Longest a lock is held without a refresh.
pub const MAX_TIMEOUT: u64 = 3600;
/// A lock's time when the client names none.
const DEFAULT_TIMEOUT: u64 = 600;
/// Locks held at once, at most.
const MAX_LOCKS: usize = 10_000;

/// One lock.
#[derive(Debug, Clone)]
pub struct Lock {
    /// What is locked, relative to the root ("" for the root itself).
    pub path: String,
    /// The whole tree below too.
    pub infinity: bool,
    /// Exclusive, or shared.
    pub exclusive: bool,
    /// The client's `owner` element, as XML, echoed back.
    pub owner: Option<String>,
    /// Seconds granted.
    pub timeout: u64,
    expires: Instant,
}

/// The locks held.
#[derive(Default)]
pub struct Locks {
    map: Mutex<HashMap<String, Lock>>,
}

/// Whether `path` is `top` or below it.
fn within(path: &str, top: &str) -> bool {
    top.is_empty() || path == top || path.strip_prefix(top).is_some_and(|r| r.starts_with('/'))
}

impl Lock {
    fn covers(&self, path: &str) -> bool {
        self.path == path || (self.infinity && within(path, &self.path))
    }

    /// The `activelock` element, with the lock's root as `href` under `prefix`.
    pub fn xml(&self, token: &str, href: &str) -> String {
        let scope = if self.exclusive {
            "exclusive"
        } else {
            "shared"
        };
        let depth = if self.infinity { "infinity" } else { "0" };
        let owner = self
            .owner
            .as_deref()
            .map(|o| format!("<D:owner>{o}</D:owner>"))
            .unwrap_or_default();
        format!(
            "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:{scope}/></D:lockscope>\
             <D:depth>{depth}</D:depth>{owner}<D:timeout>Second-{}</D:timeout>\
             <D:locktoken><D:href>{}</D:href></D:locktoken><D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock>",
            self.timeout,
            escape(token),
            escape(href)
        )
    }
}

impl Locks {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lock>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, l| l.expires > now);
        map
    }

    /// The locks that apply to `path`, with their tokens.
    pub fn covering(&self, path: &str) -> Vec<(String, Lock)> {
        self.live()
            .iter()
            .filter(|(_, l)| l.covers(path))
            .map(|(t, l)| (t.clone(), l.clone()))
            .collect()
    }

    /// Takes a new lock; `None` when one in the way conflicts (or too many are held).
    pub fn lock(
        &self,
        path: &str,
        infinity: bool,
        exclusive: bool,
        owner: Option<String>,
        timeout: u64,
    ) -> Option<(String, Lock)> {
        let mut map = self.live();
        let clash = map.values().any(|l| {
            let overlaps = l.covers(path) || (infinity && within(&l.path, path));
            overlaps && (exclusive || l.exclusive)
        });
        if clash || map.len() >= MAX_LOCKS {
            return None;
        }
        let token = new_token();
        let lock = Lock {
            path: path.to_string(),
            infinity,
            exclusive,
            owner,
            timeout,
            expires: Instant::now() + Duration::from_secs(timeout),
        };
        map.insert(token.clone(), lock.clone());
        Some((token, lock))
    }

    /// Refreshes the lock among `tokens` that applies to `path`.
    pub fn refresh(&self, path: &str, tokens: &[String], timeout: u64) -> Option<(String, Lock)> {
        let mut map = self.live();
        let (token, lock) = map
            .iter_mut()
            .find(|(t, l)| tokens.contains(t) && l.covers(path))?;
        lock.timeout = timeout;
        lock.expires = Instant::now() + Duration::from_secs(timeout);
        Some((token.clone(), lock.clone()))
    }

    /// Releases `token`, if it is a lock that applies to `path`.
    pub fn unlock(&self, path: &str, token: &str) -> bool {
        let mut map = self.live();
        match map.get(token) {
            Some(l) if l.covers(path) => {
                map.remove(token);
                true
            }
            _ => false,
        }
    }

    /// Whether a change to `path` (and, with `tree`, to everything below it) is allowed to
    /// a request that holds `tokens`: every lock in the way must be among them.
    pub fn may_change(&self, path: &str, tree: bool, tokens: &[String]) -> bool {
        self.live().iter().all(|(t, l)| {
            let in_way = l.covers(path) || (tree && within(&l.path, path));
            !in_way || tokens.contains(t)
        })
    }

    /// Drops the locks on `path` and below (it was removed or moved away).
    pub fn forget_under(&self, path: &str) {
        self.live().retain(|_, l| !within(&l.path, path));
    }
}

/// A fresh lock token: `opaquelocktoken:` and a random UUID (version 4).
fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the system's random numbers");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::web::access::hex(&b);
    format!(
        "opaquelocktoken:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The lock tokens a request names: in its `If` header (`(<opaquelocktoken:...>)`), and in
/// `Lock-Token` (UNLOCK's).
pub fn tokens(h: &hyper::HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["if", "lock-token"] {
        for v in h.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
            let mut rest = v;
            while let Some(i) = rest.find('<') {
                let Some(j) = rest[i..].find('>') else { break };
                let t = &rest[i + 1..i + j];
                if t.starts_with("opaquelocktoken:") {
                    out.push(t.to_string());
                }
                rest = &rest[i + j + 1..];
            }
        }
    }
    out
}

/// The seconds a `Timeout` header asks for, capped at [`MAX_TIMEOUT`].
pub fn timeout(h: &hyper::HeaderMap) -> u64 {
    let v = h.get("timeout").and_then(|v| v.to_str().ok()).unwrap_or("");
    v.split(',')
        .find_map(|t| {
            let t = t.trim();
            if t.eq_ignore_ascii_case("infinite") {
                return Some(MAX_TIMEOUT);
            }
            t.strip_prefix("Second-")
                .and_then(|s| s.parse::<u64>().ok())
        })
        .unwrap_or(DEFAULT_TIMEOUT)
        .clamp(1, MAX_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_locks_exclude_and_tokens_open_them() {
        let locks = Locks::default();
        let (t, _) = locks.lock("a", true, true, None, 60).unwrap();
        assert!(
            locks.lock("a/b", false, true, None, 60).is_none(),
            "inside a tree lock"
        );
        assert!(
            locks.lock("", true, false, None, 60).is_none(),
            "a tree lock above it"
        );
        assert!(
            locks.lock("ab", false, true, None, 60).is_some(),
            "a sibling whose name starts alike"
        );
        assert!(!locks.may_change("a/b", false, &[]));
        assert!(locks.may_change("a/b", false, std::slice::from_ref(&t)));
        assert!(
            !locks.may_change("", true, &[]),
            "removing the root would take the lock's tree"
        );
        assert!(locks.unlock("a", &t));
        assert!(locks.may_change("a/b", false, &[]));
        let mut h = hyper::HeaderMap::new();
        h.insert(
            "if",
            format!("</dav/a> (<{t}>) (Not <DAV:no-lock>)")
                .parse()
                .unwrap(),
        );
        h.insert("timeout", "Infinite, Second-4100000000".parse().unwrap());
        assert_eq!(tokens(&h), vec![t]);
        assert_eq!(timeout(&h), MAX_TIMEOUT);
    }
}
