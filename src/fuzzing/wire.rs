//! Stream decoders: native and classic frames, and the control messages that travel in them.
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder};

use super::split_first;
use crate::exec::protocol::Control;
use crate::files::classic::{ClassicHeader, MAX_HEADER};
use crate::files::protocol::Msg;
use crate::files::tree::{TreeHasher, unhex};
use crate::framing::hello::Hello;
use crate::framing::{Frame, NativeCodec, classic};
use crate::names;

/// Feeds `data` to `decoder` in chunks of `chunk` bytes (1–256) as reads from a socket would
/// bring it, then ends the stream; returns the frames in order.
fn decode_stream<D: Decoder>(decoder: &mut D, chunk: u8, data: &[u8]) -> Vec<D::Item> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in data.chunks(usize::from(chunk) + 1) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                // A decoding error ends the connection: nothing after it is read.
                Err(_) => return frames,
            }
        }
    }
    while let Ok(Some(f)) = decoder.decode_eof(&mut buf) {
        frames.push(f);
    }
    frames
}

/// Decodes native frames from a stream cut into reads; each frame must encode back to exactly
/// the bytes it came from, and control messages are tried as hellos.
pub fn native_frames(data: &[u8]) {
    let (chunk, data) = split_first(data);
    let frames = decode_stream(&mut NativeCodec, chunk, data);
    let mut wire = BytesMut::new();
    for f in &frames {
        NativeCodec
            .encode(f.clone(), &mut wire)
            .expect("a decoded frame encodes");
        if let Frame::Control(json) = f {
            round_trip::<Hello>(json);
        }
    }
    assert_eq!(
        &wire[..],
        &data[..wire.len()],
        "frames re-encode to their bytes"
    );
}

/// Decodes classic frames (as the classic files listener does, at its header limit); each must
/// encode back to its bytes, and each is tried as the seed's upload header and its file name.
pub fn classic_frames(data: &[u8]) {
    let (chunk, data) = split_first(data);
    let mut codec = classic::codec(MAX_HEADER);
    let frames = decode_stream(&mut codec, chunk, data);
    let mut wire = BytesMut::new();
    for f in &frames {
        codec
            .encode(Bytes::copy_from_slice(f), &mut wire)
            .expect("a decoded frame encodes");
        if let Ok(h) = serde_json::from_slice::<ClassicHeader>(f) {
            let base = h.file_name.rsplit(['/', '\\']).next().unwrap_or("");
            let _ = names::validate(base);
            let _ = names::escape(&h.md5);
        }
    }
    assert_eq!(
        &wire[..],
        &data[..wire.len()],
        "frames re-encode to their bytes"
    );
}

/// Native frames whose control messages are read as the exec protocol's and checked the way
/// the server checks a request.
pub fn exec_messages(data: &[u8]) {
    for json in controls(data) {
        if let Some(Control::Request { argv, .. }) = round_trip::<Control>(&json) {
            let _ = Control::validate_request(&argv);
        }
    }
}

/// Native frames whose control messages are read as the files protocol's, each part checked
/// the way the receiving side checks it (names, resume offsets, hashes).
pub fn files_messages(data: &[u8]) {
    let mut size = 0;
    for json in controls(data) {
        match round_trip::<Msg>(&json) {
            Some(Msg::PutFile { header, .. } | Msg::File { header }) => {
                size = header.size;
                if let Ok(n) = names::validate(&header.name) {
                    let _ = (n.file_name(), n.components().count(), n.to_string());
                }
            }
            Some(Msg::Get { names }) => names.iter().for_each(|n| {
                let _ = names::validate(n);
            }),
            Some(Msg::PutDir { name } | Msg::Dir { name }) => {
                let _ = names::validate(&name);
            }
            Some(Msg::Have { blake3 }) => {
                let _ = unhex(&blake3);
            }
            Some(Msg::Ls { dir }) => {
                let _ = names::validate_dir(&dir);
            }
            Some(Msg::Accept { offset }) => {
                let _ = TreeHasher::valid_offset(size, offset);
            }
            Some(Msg::Segment { hash, .. } | Msg::Verified { blake3: hash, .. }) => {
                let _ = unhex(&hash);
            }
            Some(Msg::Entries { entries }) => entries.iter().for_each(|e| {
                let _ = names::escape(&e.name);
            }),
            Some(Msg::Refuse { message } | Msg::Failed { message } | Msg::Error { message }) => {
                let _ = names::escape(&message);
            }
            Some(Msg::NoSpace { detail, kept }) => {
                let _ = (names::escape(&detail), TreeHasher::valid_offset(size, kept));
            }
            Some(Msg::Stopped { kept }) => {
                let _ = TreeHasher::valid_offset(size, kept);
            }
            Some(Msg::End | Msg::Same { .. } | Msg::Stop) | None => {}
        }
    }
}

/// The control messages among the native frames in `data`.
fn controls(data: &[u8]) -> Vec<Bytes> {
    let (chunk, data) = split_first(data);
    decode_stream(&mut NativeCodec, chunk, data)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Control(json) => Some(json),
            Frame::Data { .. } => None,
        })
        .collect()
}

/// Parses `json` as a `T`; what parses must serialize and parse back to itself.
fn round_trip<T>(json: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let msg: T = serde_json::from_slice(json).ok()?;
    let again = serde_json::to_vec(&msg).expect("a parsed message serializes");
    let back: T = serde_json::from_slice(&again).expect("a serialized message parses");
    assert_eq!(back, msg, "JSON round trip");
    Some(msg)
}
