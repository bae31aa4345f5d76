//! taojie's native framing. A frame is a 5-byte header — a kind byte and a big-endian `u32`
//! payload length — then the payload. Kind 0 is a control message (JSON, at most
//! [`MAX_CONTROL`] bytes); kinds 1–15 are data on that channel (at most [`MAX_DATA`] bytes,
//! and an empty payload ends the channel). The limit is checked against the header before
//! any buffer is reserved, so a hostile length costs nothing.
use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};

/// Largest control message, in bytes: headers and requests are small.
pub const MAX_CONTROL: usize = 64 * 1024;
/// Largest data chunk, in bytes.
pub const MAX_DATA: usize = 1024 * 1024;
/// Highest data channel number.
pub const MAX_CHANNEL: u8 = 15;
/// Bytes of a frame's header: its kind, then its length (big-endian u32).
pub const HEADER: usize = 5;

/// One native frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A control message: UTF-8 JSON the service gives a type to.
    Control(Bytes),
    /// A chunk of bytes on a channel (1–15); empty means the channel ended.
    Data {
        /// Channel number, 1–15.
        channel: u8,
        /// The bytes; empty marks the end of the channel.
        bytes: Bytes,
    },
}

/// Why a native stream could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed. The cause is part of the message, not a separate source, so
    /// a chain of errors says it once.
    #[error("connection error: {0}")]
    Io(io::Error),
    /// A header named a kind that does not exist.
    #[error("protocol error: unknown frame kind {0}")]
    UnknownKind(u8),
    /// A header declared more bytes than its kind allows.
    #[error("protocol error: frame of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Declared length.
        len: usize,
        /// The limit for its kind.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("protocol error: connection closed in the middle of a frame")]
    Truncated,
    /// The stream ended where a frame was expected.
    #[error("connection closed by peer")]
    Closed,
    /// A control message was not the JSON expected.
    #[error("protocol error: bad control message: {0}")]
    BadControl(#[from] serde_json::Error),
    /// A frame came that the protocol does not allow here.
    #[error("protocol error: {0}")]
    Unexpected(String),
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// The codec for native frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeCodec;

impl Decoder for NativeCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER {
            return Ok(None);
        }
        let kind = src[0];
        let len = u32::from_be_bytes([src[1], src[2], src[3], src[4]]) as usize;
        let max = match kind {
            0 => MAX_CONTROL,
            1..=MAX_CHANNEL => MAX_DATA,
            _ => return Err(FrameError::UnknownKind(kind)),
        };
        if len > max {
            return Err(FrameError::TooLong { len, max });
        }
        if src.len() < HEADER + len {
            src.reserve(HEADER + len - src.len());
            return Ok(None);
        }
        src.advance(HEADER);
        let payload = src.split_to(len).freeze();
        Ok(Some(match kind {
            0 => Frame::Control(payload),
            channel => Frame::Data {
                channel,
                bytes: payload,
            },
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<Frame> for NativeCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let (kind, payload, max) = match frame {
            Frame::Control(b) => (0, b, MAX_CONTROL),
            Frame::Data { channel, bytes } if (1..=MAX_CHANNEL).contains(&channel) => {
                (channel, bytes, MAX_DATA)
            }
            Frame::Data { channel, .. } => return Err(FrameError::UnknownKind(channel)),
        };
        if payload.len() > max {
            return Err(FrameError::TooLong {
                len: payload.len(),
                max,
            });
        }
        dst.reserve(HEADER + payload.len());
        dst.put_u8(kind);
        dst.put_u32(payload.len() as u32);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}

/// Writes the header of a data frame of `len` bytes on `channel` into `dst` (its first
/// [`HEADER`] bytes), for a sender that reads the bytes in behind it and writes both at once.
pub fn put_data_header(dst: &mut [u8], channel: u8, len: usize) {
    debug_assert!((1..=MAX_CHANNEL).contains(&channel) && len <= MAX_DATA);
    dst[0] = channel;
    dst[1..HEADER].copy_from_slice(&(len as u32).to_be_bytes());
}

/// A native connection: frames in and out, with typed control messages.
pub struct FramedStream<S> {
    framed: Framed<S, NativeCodec>,
}

/// What kind of control message `msg` is, as its `type` tag says (`put_file`, `request`),
/// for messages that name it without showing its insides (which may be long, or hold names
/// a peer chose); `a message` for one that has no tag.
pub fn kind_of<T: Serialize>(msg: &T) -> String {
    match serde_json::to_value(msg) {
        Ok(serde_json::Value::Object(m)) => match m.get("type").and_then(|t| t.as_str()) {
            Some(t) => format!("a {t} message"),
            None => "a message".into(),
        },
        _ => "a message".into(),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedStream<S> {
    /// Wraps a stream. Bytes already read from it (after a raw handshake) must not exist:
    /// the handshake reads exactly what it needs.
    pub fn new(stream: S) -> Self {
        FramedStream {
            framed: Framed::new(stream, NativeCodec),
        }
    }

    /// Sends one control message.
    pub async fn send_control<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        let json = serde_json::to_vec(msg)?;
        self.framed.send(Frame::Control(json.into())).await
    }

    /// Sends a chunk of data on `channel`; an empty chunk ends the channel.
    pub async fn send_data(&mut self, channel: u8, bytes: Bytes) -> Result<(), FrameError> {
        self.framed.send(Frame::Data { channel, bytes }).await
    }

    /// Queues a frame without flushing (several frames then go out in one write).
    pub async fn feed(&mut self, frame: Frame) -> Result<(), FrameError> {
        self.framed.feed(frame).await
    }

    /// Flushes queued frames.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<Frame>::flush(&mut self.framed).await
    }

    /// The next frame; `Closed` at a clean end of stream.
    pub async fn recv(&mut self) -> Result<Frame, FrameError> {
        self.framed.next().await.unwrap_or(Err(FrameError::Closed))
    }

    /// The next frame, which must be a control message of type `T`.
    pub async fn recv_control<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        match self.recv().await? {
            Frame::Control(json) => Ok(serde_json::from_slice(&json)?),
            Frame::Data { channel, .. } => Err(FrameError::Unexpected(format!(
                "data on channel {channel} where a control message was expected"
            ))),
        }
    }

    /// The underlying framed stream, to split into halves for full-duplex use.
    pub fn into_framed(self) -> Framed<S, NativeCodec> {
        self.framed
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode(frame: Frame) -> BytesMut {
        let mut buf = BytesMut::new();
        NativeCodec.encode(frame, &mut buf).unwrap();
        buf
    }

    #[test]
    fn a_message_is_named_by_its_tag_never_by_its_insides() {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Tagged {
            PutFile { name: String },
        }
        let named = kind_of(&Tagged::PutFile {
            name: "secret \u{1b}[31m".into(),
        });
        assert_eq!(named, "a put_file message");
        assert_eq!(kind_of(&"a bare string"), "a message");
        assert_eq!(kind_of(&serde_json::json!({"name": "x"})), "a message");
    }

    #[test]
    fn oversized_lengths_are_refused_from_the_header_alone() {
        for (kind, len) in [(0u8, MAX_CONTROL + 1), (1, MAX_DATA + 1), (0, 0xffff_ffff)] {
            let mut buf = BytesMut::new();
            buf.put_u8(kind);
            buf.put_u32(len as u32);
            let err = NativeCodec.decode(&mut buf).unwrap_err();
            assert!(matches!(err, FrameError::TooLong { .. }), "{err}");
            assert!(buf.capacity() < 1024);
        }
    }

    #[test]
    fn unknown_kind_and_truncation_are_errors() {
        let mut buf = BytesMut::from(&[16u8, 0, 0, 0, 0][..]);
        assert!(matches!(
            NativeCodec.decode(&mut buf),
            Err(FrameError::UnknownKind(16))
        ));
        let mut buf = encode(Frame::Data {
            channel: 2,
            bytes: Bytes::from_static(b"abc"),
        });
        buf.truncate(6);
        assert!(NativeCodec.decode(&mut buf).unwrap().is_none());
        assert!(matches!(
            NativeCodec.decode_eof(&mut buf),
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn typed_control_messages_cross_a_tiny_pipe() {
        let (a, b) = tokio::io::duplex(3);
        let mut a = FramedStream::new(a);
        let mut b = FramedStream::new(b);
        let send = async {
            a.send_control(&serde_json::json!({"type": "ping", "n": 7}))
                .await
                .unwrap();
            a.send_data(1, Bytes::from_static(b"payload"))
                .await
                .unwrap();
        };
        let recv = async {
            let v: serde_json::Value = b.recv_control().await.unwrap();
            assert_eq!(v["n"], 7);
            let f = b.recv().await.unwrap();
            assert_eq!(
                f,
                Frame::Data {
                    channel: 1,
                    bytes: Bytes::from_static(b"payload")
                }
            );
        };
        tokio::join!(send, recv);
    }

    fn frame() -> impl Strategy<Value = Frame> {
        let data = proptest::collection::vec(any::<u8>(), 0..200);
        prop_oneof![
            data.clone().prop_map(|d| Frame::Control(d.into())),
            (1..=MAX_CHANNEL, data).prop_map(|(channel, d)| Frame::Data {
                channel,
                bytes: d.into()
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = NativeCodec.decode(&mut buf) {}
            let _ = NativeCodec.decode_eof(&mut buf);
        }

        #[test]
        fn frames_round_trip_in_any_split(frames in proptest::collection::vec(frame(), 1..5), cut in 0usize..1000) {
            let mut wire = BytesMut::new();
            for f in &frames {
                NativeCodec.encode(f.clone(), &mut wire).unwrap();
            }
            let cut = cut.min(wire.len());
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(f) = NativeCodec.decode(&mut buf).unwrap() { got.push(f); }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(f) = NativeCodec.decode(&mut buf).unwrap() { got.push(f); }
            prop_assert_eq!(got, frames);
        }
    }
}
