//! The exec protocol's control messages, shared by client and server.
//!
//! After authentication and the hello, the client sends one [`Control::Request`]. The server
//! answers [`Control::Started`] (or [`Control::Error`] and closes), then streams the command's
//! stdout on data channel [`STDOUT`] and its stderr on [`STDERR`], each ended by an empty
//! chunk, and finishes with [`Control::Exit`]. The client's stdin travels on channel
//! [`STDIN`] the other way, also ended by an empty chunk.
use serde::{Deserialize, Serialize};

/// The service name both sides give in the hello.
pub const SERVICE: &str = "exec";
/// Data channel of the command's stdin (client to server).
pub const STDIN: u8 = 1;
/// Data channel of the command's stdout (server to client).
pub const STDOUT: u8 = 1;
/// Data channel of the command's stderr (server to client).
pub const STDERR: u8 = 2;

/// A control message of the exec protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Client: run this command.
    Request {
        /// Program and arguments; with `shell`, words of a command line for `sh -c`.
        argv: Vec<String>,
        /// Run through the server's shell (only if the server allows it).
        shell: bool,
    },
    /// Server: the command is running; output follows.
    Started,
    /// Server: the command ended.
    Exit {
        /// Exit status as a shell reports it: the code, or 128+N after signal N.
        code: i32,
        /// The signal that ended the command, if one did.
        signal: Option<i32>,
    },
    /// Server: something a person should read (a refusal, a timeout).
    Error {
        /// The message; never contains key material.
        message: String,
    },
}

impl Control {
    /// A request as the client sends it, checked the way the server checks it.
    pub fn validate_request(argv: &[String]) -> Result<(), String> {
        match argv.first() {
            None => Err("empty command".into()),
            Some(p) if p.is_empty() => Err("empty program name".into()),
            Some(_) if argv.iter().any(|a| a.contains('\0')) => {
                Err("a command argument contains a NUL byte".into())
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn wire_form_is_tagged_json() {
        let req = Control::Request {
            argv: vec!["ls".into(), "-l".into()],
            shell: false,
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"type":"request","argv":["ls","-l"],"shell":false}"#
        );
        let exit: Control =
            serde_json::from_str(r#"{"type":"exit","code":3,"signal":null}"#).unwrap();
        assert_eq!(
            exit,
            Control::Exit {
                code: 3,
                signal: None
            }
        );
        assert!(serde_json::from_str::<Control>(r#"{"type":"launch_missiles"}"#).is_err());
    }

    #[test]
    fn bad_requests_are_named() {
        assert!(Control::validate_request(&[]).is_err());
        assert!(Control::validate_request(&["".into()]).is_err());
        assert!(Control::validate_request(&["a\0b".into()]).is_err());
        assert!(Control::validate_request(&["true".into()]).is_ok());
    }

    fn control() -> impl Strategy<Value = Control> {
        prop_oneof![
            (proptest::collection::vec(".*", 0..4), any::<bool>())
                .prop_map(|(argv, shell)| Control::Request { argv, shell }),
            Just(Control::Started),
            (any::<i32>(), proptest::option::of(any::<i32>()))
                .prop_map(|(code, signal)| Control::Exit { code, signal }),
            ".*".prop_map(|message| Control::Error { message }),
        ]
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = serde_json::from_slice::<Control>(&data);
        }

        #[test]
        fn messages_round_trip(msg in control()) {
            let json = serde_json::to_vec(&msg).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Control>(&json).unwrap(), msg);
        }
    }
}
