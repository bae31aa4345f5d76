//! Keys and link authentication.
//!
//! The first step is the seeds' `conn_auth` with SHA-256: the server sends 32 random bytes,
//! the client answers HMAC-SHA256(key, those bytes), the server checks in constant time and
//! closes on a mismatch. taojie's native clients then send a challenge of their own and the
//! server proves it knows the key too, so neither side talks to an impostor. Every step has a
//! timeout and every connection a fresh challenge, so a recorded answer is worthless.
mod handshake;
mod key;

pub use handshake::{
    AuthError, CHALLENGE_LEN, TIMEOUT, classic_server, client, refuse_protocol_1, server,
};
pub use key::{Key, create_error, default_path, generate, load_or_create};
