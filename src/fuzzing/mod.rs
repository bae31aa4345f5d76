//! Entry points for coverage-guided fuzzing: one function per decoder that reads bytes from
//! the network or a file. The libFuzzer targets in `fuzz/` call them with what the fuzzer
//! makes up, and `tests/fuzz_corpus.rs` replays the committed corpus through the same
//! functions on stable Rust, so every input the fuzzer once found interesting (and every
//! crash it found) stays a plain test.
//!
//! Each function feeds its bytes the way a peer would and checks what must hold whatever they
//! are: no panic, bounded output, and where a decoder has an encoder, that what decoded
//! encodes and decodes back to itself. A broken property panics, which is what the fuzzer
//! reports. Not a stable API: it follows the decoders.
mod datagrams;
mod handshake;
mod proxy;
mod text;
mod web;
mod wire;

pub use datagrams::{ipmsg, sntp, strftime};
pub use handshake::{handshake, secure_records};
pub use proxy::proxy_requests;
pub use text::{chat_lines, files_state, http, ipcalc};
pub use web::files_web;
pub use wire::{classic_frames, exec_messages, files_messages, native_frames};

/// A fuzzing entry point: takes any bytes, panics only on a broken property.
pub type Entry = fn(&[u8]);

/// Every target: its name (the `fuzz/` binary and corpus directory) and its entry point.
pub const TARGETS: &[(&str, Entry)] = &[
    ("native_frames", native_frames),
    ("classic_frames", classic_frames),
    ("exec_messages", exec_messages),
    ("files_messages", files_messages),
    ("files_state", files_state),
    ("handshake", handshake),
    ("secure_records", secure_records),
    ("chat_lines", chat_lines),
    ("sntp", sntp),
    ("strftime", strftime),
    ("ipmsg", ipmsg),
    ("http", http),
    ("ipcalc", ipcalc),
    ("proxy_requests", proxy_requests),
    ("files_web", files_web),
];

/// Splits off the first byte as a small number (a chunk size, a mode), the rest as the input.
fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}
