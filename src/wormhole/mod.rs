//! Magic Wormhole, written here from the protocol's public documents: a file or a text to
//! another person with a short code (`7-crossover-clockwork`), end-to-end encrypted with a
//! key both sides derive from the code (SPAKE2), and interoperable with every wormhole client.
//!
//! The layers, bottom up: [`code`] (the codes, from the PGP word list; [`prompt`] asks for
//! one with Tab completion), [`keys`] (SPAKE2, HKDF, secretbox), [`messages`] (the mailbox
//! server's JSON messages, shared by both ends), [`mailbox`] (the server's client),
//! [`session`] (one wormhole: key exchange, ordered encrypted messages), [`transit`] (the bulk
//! connection, direct or relayed, and its records), and [`transfer`] (file-transfer v1, taojie's
//! extensions between taojie peers, and safe landing on disk). [`relay`] is the other end:
//! `taojie serve relay`, a mailbox server and transit relay of our own.
pub mod code;
pub mod keys;
pub mod mailbox;
pub mod messages;
pub mod prompt;
pub mod relay;
pub mod session;
pub mod transfer;
pub mod transit;
mod words;

/// The application id of the file-transfer tool every wormhole client speaks.
pub const APPID: &str = "lothar.com/wormhole/text-or-file-xfer";
/// The public mailbox server every wormhole client uses by default.
pub const DEFAULT_RELAY_URL: &str = "ws://relay.magic-wormhole.io:4000/v1";
/// The public transit relay every wormhole client uses by default.
pub const DEFAULT_TRANSIT_HELPER: &str = "tcp:transit.magic-wormhole.io:4001";
