//! The mailbox server's messages, both directions: one JSON object per WebSocket message,
//! named by its `type`. The client ([`super::mailbox`]) and taojie's own server
//! ([`super::relay`]) share these. Unknown keys are ignored; the client ignores unknown
//! types.
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most bytes of one mailbox WebSocket message either side accepts. The Python client's
/// messages are a few hundred bytes; a file offer with a long name or many hints a few KiB.
pub const MAX_MESSAGE: usize = 1 << 20;

/// What a client sends the server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMsg {
    /// First message: the application and our random side.
    Bind {
        /// The application id both peers must share.
        appid: String,
        /// Our random side (hex), which tells our own messages from the peer's.
        side: String,
        /// The program and its version, for the server's statistics.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_version: Option<(String, String)>,
    },
    /// The nameplates in use, for code completion.
    List,
    /// A new nameplate, as short as possible.
    Allocate,
    /// Claims a nameplate; the answer names its mailbox.
    Claim {
        /// The nameplate.
        nameplate: String,
    },
    /// Gives the nameplate back once the peer knows the mailbox.
    Release {
        /// The nameplate claimed before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nameplate: Option<String>,
    },
    /// Opens the mailbox: every message in it, and each one added later, is delivered.
    Open {
        /// The mailbox id from `claimed`.
        mailbox: String,
    },
    /// Adds a message for the peer.
    Add {
        /// `pake`, `version`, or a number.
        phase: String,
        /// The message, hex.
        body: String,
    },
    /// Closes the mailbox, telling the server how it went.
    Close {
        /// The mailbox opened before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mailbox: Option<String>,
        /// `happy`, `lonely`, `scary` or `errory`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mood: Option<String>,
    },
    /// Asks for a `pong` with the same number.
    Ping {
        /// Any number.
        ping: Value,
    },
}

/// One message in a mailbox, as the server delivers it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MailboxMessage {
    /// The side that added it.
    pub side: String,
    /// Its phase.
    pub phase: String,
    /// Its body, hex.
    pub body: String,
    /// The `id` of the `add` that carried it, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

/// One nameplate in a `nameplates` answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NameplateEntry {
    /// The nameplate.
    pub id: String,
}

/// What the server sends a client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMsg {
    /// First message: `motd`, `error` (the client must stop), and other information.
    Welcome {
        /// The information.
        welcome: Value,
    },
    /// The nameplates in use.
    Nameplates {
        /// One entry each.
        nameplates: Vec<NameplateEntry>,
    },
    /// The nameplate `allocate` got.
    Allocated {
        /// The nameplate.
        nameplate: String,
    },
    /// The mailbox of a claimed nameplate.
    Claimed {
        /// The mailbox id.
        mailbox: String,
    },
    /// The nameplate was released.
    Released,
    /// A mailbox message (ours echoed back, or the peer's).
    Message(MailboxMessage),
    /// The mailbox was closed.
    Closed,
    /// The server got a command.
    Ack,
    /// Answer to `ping`.
    Pong {
        /// The `ping`'s number.
        pong: Value,
    },
    /// A command was refused.
    Error {
        /// Why.
        error: String,
        /// The command, as received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        orig: Option<Value>,
    },
    /// A type this client does not know.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes of a hex string; `None` if it is not hex of whole bytes.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_messages_look_like_the_python_clients() {
        let bind = ClientMsg::Bind {
            appid: "a".into(),
            side: "0011223344".into(),
            client_version: Some(("taojie".into(), "0.1.0".into())),
        };
        assert_eq!(
            serde_json::to_value(&bind).unwrap(),
            json!({"type": "bind", "appid": "a", "side": "0011223344",
                   "client_version": ["taojie", "0.1.0"]})
        );
        assert_eq!(
            serde_json::to_value(ClientMsg::Release { nameplate: None }).unwrap(),
            json!({"type": "release"})
        );
        let add: ClientMsg = serde_json::from_value(
            json!({"type": "add", "phase": "pake", "body": "00", "id": "ab12"}),
        )
        .unwrap();
        assert_eq!(
            add,
            ClientMsg::Add {
                phase: "pake".into(),
                body: "00".into()
            }
        );
    }

    #[test]
    fn server_messages_parse_with_extra_keys_and_unknown_types() {
        let m: ServerMsg = serde_json::from_value(json!({
            "type": "message", "side": "s", "phase": "0", "body": "ff",
            "id": "ab", "server_tx": 1.5
        }))
        .unwrap();
        assert!(matches!(m, ServerMsg::Message(MailboxMessage { ref phase, .. }) if phase == "0"));
        let u: ServerMsg = serde_json::from_value(json!({"type": "shiny", "x": 1})).unwrap();
        assert_eq!(u, ServerMsg::Unknown);
        let w: ServerMsg =
            serde_json::from_value(json!({"type": "welcome", "welcome": {"motd": "hi"}})).unwrap();
        assert_eq!(
            w,
            ServerMsg::Welcome {
                welcome: json!({"motd": "hi"})
            }
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_junk() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abFF").unwrap(), vec![0, 0xab, 0xff]);
        for junk in ["0", "zz", "é1"] {
            assert!(unhex(junk).is_none(), "{junk}");
        }
    }
}
