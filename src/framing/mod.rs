//! Framing: turning a byte stream into messages and back, with every length bounded before
//! anything is allocated.
//!
//! Two framings live here. [`classic`] is the seeds' `struct.pack('i', n)`: a 4-byte signed
//! little-endian length, then the bytes. [`native`] is taojie's own: each frame says whether it
//! is a control message (small, JSON, typed by the service) or a chunk of data on a numbered
//! channel (larger, raw bytes; an empty chunk ends its channel), and [`hello`] is the first
//! exchange on every native connection, so a mismatched peer gets a clear error. [`lines`]
//! is the third, for line protocols: a stream cut into lines no longer than a limit.
pub mod classic;
pub mod hello;
pub mod lines;
pub mod native;

pub use native::{Frame, FrameError, FramedStream, NativeCodec};
