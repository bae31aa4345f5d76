//! Whole-file BLAKE3 computed segment by segment, so a transfer can be checked as it goes
//! and resumed without hashing again what already arrived.
//!
//! The file is cut into [`SEGMENT`]-byte pieces, each a complete subtree of BLAKE3's own
//! tree. The sender sends each piece's chaining value right after its bytes; the receiver
//! compares it with its own and only then counts the piece as held, appending the 32 bytes
//! to the partial file's state. Merging the chaining values gives exactly `b3sum`'s hash,
//! and resuming needs only the stored values — not a pass over the bytes already written.
use blake3::hazmat::merge_subtrees_root;
use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};

/// Bytes per verified segment: a power of two, so each segment is a BLAKE3 subtree.
pub const SEGMENT: u64 = 4 << 20;

/// The hash of a file of known size, fed in order from some segment boundary on.
pub struct TreeHasher {
    size: u64,
    pos: u64,
    cvs: Vec<ChainingValue>,
    current: blake3::Hasher,
}

impl TreeHasher {
    /// A hasher for a file of `size` bytes, from its first byte.
    pub fn new(size: u64) -> Self {
        Self::resume(size, Vec::new())
    }

    /// A hasher that already holds the first `cvs.len()` segments' chaining values.
    pub fn resume(size: u64, cvs: Vec<ChainingValue>) -> Self {
        let pos = (cvs.len() as u64 * SEGMENT).min(size);
        let mut current = blake3::Hasher::new();
        if pos < size {
            current.set_input_offset(pos);
        }
        TreeHasher {
            size,
            pos,
            cvs,
            current,
        }
    }

    /// Number of segments in a file of `size` bytes (an empty file has one, empty).
    pub fn segments(size: u64) -> u64 {
        size.div_ceil(SEGMENT).max(1)
    }

    /// Whether a peer's resume offset is one this scheme can produce: 0, or a segment
    /// boundary (or the end) of a file of several segments.
    pub fn valid_offset(size: u64, offset: u64) -> bool {
        offset == 0
            || (size > SEGMENT
                && offset <= size
                && (offset.is_multiple_of(SEGMENT) || offset == size))
    }

    /// A file of one segment is hashed as a plain root, with no chaining values.
    fn single(&self) -> bool {
        self.size <= SEGMENT
    }

    /// Bytes hashed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Chaining values of the complete segments so far.
    pub fn chaining_values(&self) -> &[ChainingValue] {
        &self.cvs
    }

    /// Feeds the next bytes (never past `size`); each segment they complete is pushed to
    /// `done` as (index, chaining value).
    pub fn update(&mut self, mut data: &[u8], done: &mut Vec<(u64, ChainingValue)>) {
        debug_assert!(self.pos + data.len() as u64 <= self.size);
        while !data.is_empty() {
            let seg_end = ((self.pos / SEGMENT + 1) * SEGMENT).min(self.size);
            let take = ((seg_end - self.pos) as usize).min(data.len());
            self.current.update(&data[..take]);
            self.pos += take as u64;
            data = &data[take..];
            if self.pos == seg_end && !self.single() {
                let cv = self.current.finalize_non_root();
                done.push((self.cvs.len() as u64, cv));
                self.cvs.push(cv);
                self.current = blake3::Hasher::new();
                if self.pos < self.size {
                    self.current.set_input_offset(self.pos);
                }
            }
        }
    }

    /// For a one-segment file whose bytes are all in: its root hash, which stands in for
    /// segment 0's chaining value on the wire.
    pub fn single_root(&self) -> Option<[u8; 32]> {
        (self.single() && self.pos == self.size).then(|| *self.current.finalize().as_bytes())
    }

    /// The whole file's BLAKE3 hash, once every byte was fed.
    pub fn root(&self) -> Option<blake3::Hash> {
        if self.pos != self.size {
            return None;
        }
        if self.single() {
            return Some(self.current.finalize());
        }
        let left = left_subtree_len(self.size);
        Some(merge_subtrees_root(
            &self.node(0, left),
            &self.node(left, self.size - left),
            Mode::Hash,
        ))
    }

    fn node(&self, start: u64, len: u64) -> ChainingValue {
        if len <= SEGMENT {
            return self.cvs[(start / SEGMENT) as usize];
        }
        let left = left_subtree_len(len);
        merge_subtrees_non_root(
            &self.node(start, left),
            &self.node(start + left, len - left),
            Mode::Hash,
        )
    }
}

/// The BLAKE3 of a whole open file, hex (the same as [`TreeHasher`]'s root and `b3sum`'s),
/// read from its start without moving its position.
pub fn file_hash(file: &std::fs::File) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok(hex(h.finalize().as_bytes()));
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
}

/// Lower-case hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex characters.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn matches_plain_blake3_for_every_shape_and_split() {
        let seg = SEGMENT as usize;
        let all = data(3 * seg + 5);
        for size in [
            0,
            1,
            1024,
            1025,
            seg - 1,
            seg,
            seg + 1,
            2 * seg,
            3 * seg + 5,
        ] {
            let input = &all[..size];
            for step in [7_usize, 65536, 1 << 20] {
                let mut h = TreeHasher::new(size as u64);
                let mut done = Vec::new();
                for piece in input.chunks(step) {
                    h.update(piece, &mut done);
                }
                assert_eq!(
                    h.root().unwrap(),
                    blake3::hash(input),
                    "size {size} step {step}"
                );
                let expect = if size as u64 <= SEGMENT {
                    0
                } else {
                    size.div_ceil(seg)
                };
                assert_eq!(done.len(), expect);
            }
        }
    }

    #[test]
    fn resuming_from_stored_chaining_values_gives_the_same_hash() {
        let seg = SEGMENT as usize;
        let input = data(2 * seg + 999);
        let mut first = TreeHasher::new(input.len() as u64);
        first.update(&input[..seg + 10], &mut Vec::new());
        let kept = first.chaining_values().to_vec();
        assert_eq!(kept.len(), 1);
        let mut again = TreeHasher::resume(input.len() as u64, kept);
        assert_eq!(again.position(), SEGMENT);
        again.update(&input[seg..], &mut Vec::new());
        assert_eq!(again.root().unwrap(), blake3::hash(&input));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        #[test]
        fn any_size_split_and_resume_point_gives_b3sum(
            size in 0usize..(2 * SEGMENT as usize + 3000),
            step in 1usize..(3 << 20),
            cut in 0usize..3,
        ) {
            let input = data(size);
            let mut first = TreeHasher::new(size as u64);
            let mut done = Vec::new();
            let stop = (cut * SEGMENT as usize).min(size);
            for piece in input[..stop].chunks(step) {
                first.update(piece, &mut done);
            }
            let held = first.chaining_values().to_vec();
            let mut again = TreeHasher::resume(size as u64, held);
            let from = again.position() as usize;
            proptest::prop_assert!(TreeHasher::valid_offset(size as u64, from as u64));
            for piece in input[from..].chunks(step) {
                again.update(piece, &mut done);
            }
            proptest::prop_assert_eq!(again.root().unwrap(), blake3::hash(&input));
        }
    }

    #[test]
    fn hex_round_trips() {
        let h = *blake3::hash(b"x").as_bytes();
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
    }
}
