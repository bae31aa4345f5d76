//! The seeds' framing: `struct.pack('i', n)` — a 4-byte signed little-endian length, then `n`
//! bytes — as a tokio-util codec with a maximum frame length.
use tokio_util::codec::LengthDelimitedCodec;

/// A codec for classic frames of at most `max` bytes. A declared length above `max` (which
/// includes every negative `i32`, read as an unsigned value of 2^31 or more) is an error
/// before any buffer is reserved for it.
pub fn codec(max: usize) -> LengthDelimitedCodec {
    assert!(
        max <= i32::MAX as usize,
        "classic lengths are signed 32-bit"
    );
    LengthDelimitedCodec::builder()
        .little_endian()
        .length_field_length(4)
        .max_frame_length(max)
        .new_codec()
}

/// The 4-byte classic length prefix for `len` bytes.
pub fn prefix(len: usize) -> Option<[u8; 4]> {
    i32::try_from(len).ok().map(i32::to_le_bytes)
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use proptest::prelude::*;
    use tokio_util::codec::{Decoder, Encoder};

    use super::*;

    #[test]
    fn matches_struct_pack_i() {
        // struct.pack('i', 258) on a little-endian machine.
        assert_eq!(prefix(258), Some([2, 1, 0, 0]));
        let mut buf = BytesMut::from(&[5u8, 0, 0, 0, b'h', b'e', b'l', b'l', b'o'][..]);
        let frame = codec(16).decode(&mut buf).unwrap().unwrap();
        assert_eq!(&frame[..], b"hello");
    }

    #[test]
    fn oversized_and_negative_lengths_are_refused_without_allocating() {
        for header in [0x7fff_ffffu32, 0xffff_ffff, 0x8000_0000, 17] {
            let mut buf = BytesMut::new();
            buf.put_u32_le(header);
            assert!(codec(16).decode(&mut buf).is_err(), "{header:#x} accepted");
            assert!(buf.capacity() < 1024, "reserved {} bytes", buf.capacity());
        }
    }

    #[test]
    fn truncated_frame_is_incomplete_then_an_error_at_eof() {
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, b'a'][..]);
        let mut c = codec(16);
        assert!(c.decode(&mut buf).unwrap().is_none());
        assert!(c.decode_eof(&mut buf).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = BytesMut::from(&data[..]);
            let mut c = codec(32);
            while let Ok(Some(_)) = c.decode(&mut buf) {}
        }

        #[test]
        fn encode_decode_round_trips(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut c = codec(64);
            let mut buf = BytesMut::new();
            c.encode(bytes::Bytes::from(data.clone()), &mut buf).unwrap();
            prop_assert_eq!(&buf[..4], &prefix(data.len()).unwrap()[..]);
            prop_assert_eq!(&c.decode(&mut buf).unwrap().unwrap()[..], &data[..]);
        }
    }
}
