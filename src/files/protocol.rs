//! The control messages of the native files protocol, shared by client and server.
//!
//! After authentication and `hello("files")` the client sends one request (`put_file`s, `get`
//! or `ls`). A file then crosses the same way in both directions: the sender offers a
//! [`FileHeader`], the receiver answers `accept` (with the offset to resume from) or `refuse`,
//! the sender streams the missing bytes on data channel 1 with a `segment` hash after every
//! [`SEGMENT`](super::tree::SEGMENT) bytes, and the receiver answers `verified` or `failed`.
//! A receiver that already has a file of that size under the name answers `have` (its hash)
//! instead of `accept`, and the sender says whether it is the `same`. A sender that is told to
//! stop sends `stop` in place of the rest, and the receiver says what it keeps (`stopped`).
use serde::{Deserialize, Serialize};

/// Data channel that carries file bytes.
pub const DATA: u8 = 1;

/// What the sender says about a file before its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// Relative name, `/`-separated; validated by the receiver.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (`0o777` at most are applied).
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Name within the listed directory.
    pub name: String,
    /// `file`, `dir` or `other`.
    pub kind: String,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// Every control message after hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Client → server: here comes a file for the root (put).
    PutFile {
        /// The file.
        header: FileHeader,
        /// Replace an existing file of that name.
        overwrite: bool,
        /// Start over rather than resume an earlier attempt, and keep nothing of this one
        /// if it fails (absent from older clients: resume and keep).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
    },
    /// Client → server: make this directory (an empty one of a tree being put); answered
    /// with `end`, or `refuse`.
    PutDir {
        /// Relative name, `/`-separated; validated by the server.
        name: String,
    },
    /// Client → server: send me these names (files or whole directories).
    Get {
        /// Names relative to the root.
        names: Vec<String>,
    },
    /// Client → server: list this directory ("" is the root).
    Ls {
        /// Directory relative to the root.
        dir: String,
    },
    /// Server → client (get): the next file.
    File {
        /// The file; its name is relative to the client's output directory.
        header: FileHeader,
    },
    /// Server → client (get): a directory with nothing in it to send; the client makes it.
    Dir {
        /// Its name, relative to the client's output directory.
        name: String,
    },
    /// Receiver → sender: send the bytes from `offset` on.
    Accept {
        /// Bytes the receiver already holds (verified) from an earlier attempt.
        offset: u64,
    },
    /// Receiver → sender, in place of `accept`: a file of the same size is already under the
    /// name (and is not to be replaced); its BLAKE3, for the sender to compare with its own.
    Have {
        /// The receiver's file's BLAKE3, hex.
        blake3: String,
    },
    /// Sender → receiver, after `have`: whether the two files are the same. Either way no
    /// byte follows: the same file is up to date, another is not replaced.
    Same {
        /// The hashes are equal.
        same: bool,
    },
    /// Receiver → sender: this file will not be taken; the sender moves on.
    Refuse {
        /// Why, for a person.
        message: String,
    },
    /// Receiver → sender: its disk cannot hold the file, either before a byte moved (in
    /// place of `accept`) or while the bytes came (in place of `verified`).
    NoSpace {
        /// What did not fit, for a person (sizes, free space).
        detail: String,
        /// Verified bytes the receiver keeps for a later resume (0: nothing kept).
        kept: u64,
    },
    /// Sender → receiver: the BLAKE3 chaining value of a complete segment just sent.
    Segment {
        /// Segment number from 0.
        index: u64,
        /// Hex chaining value (or the root hash for a file of one segment).
        hash: String,
    },
    /// Sender → receiver, in place of the rest of a file: stop here and keep what is
    /// verified for a later resume (the sending user pressed Ctrl-C).
    Stop,
    /// Receiver → sender, after `stop`: what it keeps.
    Stopped {
        /// Verified bytes kept beside the target for a resume (0: nothing kept).
        kept: u64,
    },
    /// Receiver → sender: the file is in place under its final name.
    Verified {
        /// The whole file's BLAKE3 hash, hex.
        blake3: String,
        /// File bytes that crossed the wire for it this time.
        received: u64,
    },
    /// Receiver → sender: the file was discarded.
    Failed {
        /// Why.
        message: String,
    },
    /// Server → client (ls): some entries.
    Entries {
        /// The entries.
        entries: Vec<Entry>,
    },
    /// Server → client: the request is answered in full.
    End,
    /// Either side: the request cannot be served (a name refused for get/ls, a mode refused).
    Error {
        /// Why, for a person.
        message: String,
    },
}
