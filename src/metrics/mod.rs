//! Prometheus metrics: what every service counts (connections, refusals, bytes, failed
//! authentications) and what some count of their own (commands run, files stored, chat
//! members and lines), labelled by service, and [`encode`] for the `--metrics ADDR` endpoint
//! (`crate::serve::metrics`) that serves them in the text format.
//!
//! The counters live in one process-wide registry and are always kept, whether or not an
//! endpoint serves them: each is an atomic, and the hot paths hold a handle fetched once
//! (per listener, per chat broker), so counting a read or a write is one atomic add, never a
//! lock or a lookup. Series with a second label (a refusal's reason, a command's exit status)
//! are looked up when the event happens: they are rare next to bytes.
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    service: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UserOutcomeLabels {
    service: &'static str,
    user: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UserDirectionLabels {
    service: &'static str,
    user: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExitLabels {
    service: &'static str,
    exit: String,
}

/// Every family, registered once.
struct Families {
    registry: Registry,
    accepted: Family<ServiceLabel, Counter>,
    open: Family<ServiceLabel, Gauge>,
    refused: Family<ReasonLabels, Counter>,
    bytes_in: Family<ServiceLabel, Counter>,
    bytes_out: Family<ServiceLabel, Counter>,
    auth_failures: Family<ServiceLabel, Counter>,
    commands: Family<ExitLabels, Counter>,
    files_stored: Family<ServiceLabel, Counter>,
    file_bytes_stored: Family<ServiceLabel, Counter>,
    chat_members: Family<ServiceLabel, Gauge>,
    chat_rooms: Family<ServiceLabel, Gauge>,
    chat_lines: Family<ServiceLabel, Counter>,
    chat_drops: Family<ServiceLabel, Counter>,
    chat_behind: Family<ServiceLabel, Gauge>,
    chat_backlog: Family<ServiceLabel, Gauge>,
    proxy_requests: Family<UserOutcomeLabels, Counter>,
    proxy_bytes: Family<UserDirectionLabels, Counter>,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("taojie");
    let f = Families {
        registry: Registry::default(),
        accepted: Family::default(),
        open: Family::default(),
        refused: Family::default(),
        bytes_in: Family::default(),
        bytes_out: Family::default(),
        auth_failures: Family::default(),
        commands: Family::default(),
        files_stored: Family::default(),
        file_bytes_stored: Family::default(),
        chat_members: Family::default(),
        chat_rooms: Family::default(),
        chat_lines: Family::default(),
        chat_drops: Family::default(),
        chat_behind: Family::default(),
        chat_backlog: Family::default(),
        proxy_requests: Family::default(),
        proxy_bytes: Family::default(),
    };
    let r = &mut registry;
    r.register(
        "connections_accepted",
        "Connections accepted, including those closed at once over --max-conns",
        f.accepted.clone(),
    );
    r.register(
        "connections_open",
        "Connections being served now",
        f.open.clone(),
    );
    r.register(
        "connections_refused",
        "Connections refused, by reason (connection limit, handshake refused or timed out, ...)",
        f.refused.clone(),
    );
    r.register(
        "received_bytes",
        "Bytes read from clients' sockets (TCP, Unix and UDP; encrypted bytes as sent)",
        f.bytes_in.clone(),
    );
    r.register(
        "sent_bytes",
        "Bytes written to clients' sockets (TCP, Unix and UDP; encrypted bytes as sent)",
        f.bytes_out.clone(),
    );
    r.register(
        "auth_failures",
        "Handshakes that failed: a wrong key, an unknown identity, or not the protocol",
        f.auth_failures.clone(),
    );
    r.register(
        "commands",
        "Commands run, by exit status (a number; timeout; lost: the client left first)",
        f.commands.clone(),
    );
    r.register(
        "files_stored",
        "Uploads verified and stored under their final name",
        f.files_stored.clone(),
    );
    r.register(
        "file_stored_bytes",
        "Size of the uploads stored",
        f.file_bytes_stored.clone(),
    );
    r.register("chat_members", "Chat members now", f.chat_members.clone());
    r.register("chat_rooms", "Chat rooms now", f.chat_rooms.clone());
    r.register(
        "chat_lines",
        "Lines members sent to their rooms",
        f.chat_lines.clone(),
    );
    r.register(
        "chat_drops",
        "Members dropped for not reading (their queue stalled or overflowed)",
        f.chat_drops.clone(),
    );
    r.register(
        "chat_members_behind",
        "Members whose queue is past its high mark (their room's senders wait)",
        f.chat_behind.clone(),
    );
    r.register(
        "chat_fanout_backlog",
        "Posts handed to the fan-out and not written to their members yet: how far delivery lags",
        f.chat_backlog.clone(),
    );
    r.register(
        "proxy_requests",
        "Proxy requests by user (- before or without a login) and outcome (relayed, \
         udp associated, or the refusal's reason)",
        f.proxy_requests.clone(),
    );
    r.register(
        "proxy_bytes",
        "Bytes a proxy relayed for each user, up (client to target) and down",
        f.proxy_bytes.clone(),
    );
    Families { registry, ..f }
});

/// One service's counters, fetched once (see [`service`]) and kept by its listeners.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    /// Connections accepted.
    pub accepted: Counter,
    /// Connections being served.
    pub open: Gauge,
    /// Bytes read from clients.
    pub bytes_in: Counter,
    /// Bytes written to clients.
    pub bytes_out: Counter,
    /// Handshakes that failed.
    pub auth_failures: Counter,
}

impl Service {
    /// Counts a connection refused for `reason` (a short fixed phrase, the same as the log's).
    pub fn refused(&self, reason: &'static str) {
        FAMILIES
            .refused
            .get_or_create(&ReasonLabels {
                service: self.name,
                reason,
            })
            .inc();
    }

    /// Counts a command that ended with `exit` (its status, or a word such as `timeout`).
    pub fn command(&self, exit: impl ToString) {
        FAMILIES
            .commands
            .get_or_create(&ExitLabels {
                service: self.name,
                exit: exit.to_string(),
            })
            .inc();
    }

    /// Counts a proxy request of `user` (a name from the users file, or `-`) that ended in
    /// `outcome` (a short fixed phrase).
    pub fn proxied(&self, user: &str, outcome: &'static str) {
        FAMILIES
            .proxy_requests
            .get_or_create(&UserOutcomeLabels {
                service: self.name,
                user: user.to_string(),
                outcome,
            })
            .inc();
    }

    /// Counts bytes a proxy relayed for `user`, each way.
    pub fn proxied_bytes(&self, user: &str, up: u64, down: u64) {
        for (direction, n) in [("up", up), ("down", down)] {
            FAMILIES
                .proxy_bytes
                .get_or_create(&UserDirectionLabels {
                    service: self.name,
                    user: user.to_string(),
                    direction,
                })
                .inc_by(n);
        }
    }

    /// Counts a stored upload of `bytes`.
    pub fn stored(&self, bytes: u64) {
        let label = ServiceLabel { service: self.name };
        FAMILIES.files_stored.get_or_create(&label).inc();
        FAMILIES
            .file_bytes_stored
            .get_or_create(&label)
            .inc_by(bytes);
    }
}

static SERVICES: LazyLock<Mutex<HashMap<&'static str, &'static Service>>> =
    LazyLock::new(Mutex::default);

/// The counters of the service called `name` (e.g. `echo`, `chat-web`), made at the first
/// call and shared from then on. Call it when a listener starts, not per connection.
pub fn service(name: &'static str) -> &'static Service {
    let mut services = SERVICES.lock().unwrap_or_else(|e| e.into_inner());
    services.entry(name).or_insert_with(|| {
        let f = &*FAMILIES;
        let label = ServiceLabel { service: name };
        // One per service name, which are fixed strings: a bounded, deliberate leak.
        Box::leak(Box::new(Service {
            name,
            accepted: f.accepted.get_or_create_owned(&label),
            open: f.open.get_or_create_owned(&label),
            bytes_in: f.bytes_in.get_or_create_owned(&label),
            bytes_out: f.bytes_out.get_or_create_owned(&label),
            auth_failures: f.auth_failures.get_or_create_owned(&label),
        }))
    })
}

/// The chat broker's counters (all under `service="chat"`: the web page's members are the
/// broker's members too).
#[derive(Debug)]
pub struct Chat {
    /// Members now.
    pub members: Gauge,
    /// Rooms now.
    pub rooms: Gauge,
    /// Lines members sent.
    pub lines: Counter,
    /// Members dropped for not reading.
    pub drops: Counter,
    /// Members past their queue's high mark.
    pub behind: Gauge,
    /// Posts waiting in the fan-out.
    pub backlog: Gauge,
}

static CHAT: LazyLock<Chat> = LazyLock::new(|| {
    let f = &*FAMILIES;
    let label = ServiceLabel { service: "chat" };
    Chat {
        members: f.chat_members.get_or_create_owned(&label),
        rooms: f.chat_rooms.get_or_create_owned(&label),
        lines: f.chat_lines.get_or_create_owned(&label),
        drops: f.chat_drops.get_or_create_owned(&label),
        behind: f.chat_behind.get_or_create_owned(&label),
        backlog: f.chat_backlog.get_or_create_owned(&label),
    }
});

/// The chat broker's counters.
pub fn chat() -> &'static Chat {
    &CHAT
}

/// Every metric in the Prometheus text format (OpenMetrics 1.0, which Prometheus reads).
pub fn encode() -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &FAMILIES.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_counts_under_its_own_label() {
        let s = service("unit-test");
        assert!(std::ptr::eq(s, service("unit-test")));
        s.bytes_in.inc_by(5);
        s.refused("connection limit");
        s.command(3);
        let text = encode();
        assert!(
            text.contains("taojie_received_bytes_total{service=\"unit-test\"} 5"),
            "{text}"
        );
        assert!(text.contains(
            "taojie_connections_refused_total{service=\"unit-test\",reason=\"connection limit\"} 1"
        ));
        assert!(text.contains("taojie_commands_total{service=\"unit-test\",exit=\"3\"} 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
