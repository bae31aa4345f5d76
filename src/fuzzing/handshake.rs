//! The handshakes that run on a raw connection before any framing (the HMAC challenge and
//! answer, native and the seeds'; the Noise handshake's banner, mode line and messages), and
//! the encrypted stream's records after it.
use std::sync::OnceLock;

use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;

use super::split_first;
use crate::auth::{self, Key};
use crate::secure::cipher::{self, Opener, Sealer};
use crate::secure::stream::{MAX_PLAIN, TAG};
use crate::secure::{self, ClientAuth, PATTERN_NN, SecureStream, ServerAuth};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Runs one side of a handshake (chosen by the first byte) against a peer that sends the
/// rest of the bytes and then closes; whatever it sends, the side must end with an error or
/// success, never a panic or a wait.
pub fn handshake(data: &[u8]) {
    let (side, data) = split_first(data);
    let key = Key::from_bytes(b"fuzz key").expect("a key");
    let stream = tokio::io::join(data, tokio::io::sink());
    runtime().block_on(async move {
        match side % 7 {
            0 => drop(auth::server(&mut { stream }, Some(&key)).await),
            1 => drop(auth::server(&mut { stream }, None).await),
            2 => drop(auth::classic_server(&mut { stream }, &key).await),
            3 => drop(auth::client(&mut { stream }, Some(&key)).await),
            4 => {
                let auth = ServerAuth {
                    psk: Some(key),
                    identity: None,
                    open: true,
                };
                drop(secure::server(stream, &auth).await);
            }
            5 => drop(secure::client(stream, &ClientAuth::Psk(key)).await),
            _ => drop(secure::client(stream, &ClientAuth::None).await),
        }
    });
}

/// Plaintext sealed per input at most (six full records: enough for a bulk read), to keep
/// each run short.
const MAX_SEALED: usize = 6 * MAX_PLAIN;

/// Two ends of a finished Noise handshake: the initiator's snow transport state, and the
/// responder's ciphers as taojie takes them (so the records are snow's own).
fn noise_pair() -> (snow::TransportState, (Sealer, Opener)) {
    let params: snow::params::NoiseParams = PATTERN_NN.parse().expect("our pattern");
    let mut i = snow::Builder::new(params.clone())
        .build_initiator()
        .expect("an initiator");
    let mut r = snow::Builder::new(params)
        .build_responder()
        .expect("a responder");
    let (mut msg, mut payload) = ([0u8; 256], [0u8; 256]);
    let n = i.write_message(&[], &mut msg).expect("message 1");
    r.read_message(&msg[..n], &mut payload)
        .expect("message 1 reads");
    let n = r.write_message(&[], &mut msg).expect("message 2");
    i.read_message(&msg[..n], &mut payload)
        .expect("message 2 reads");
    (
        i.into_transport_mode().expect("initiator done"),
        cipher::split(&mut r),
    )
}

/// Records from a peer that holds the keys, read through [`SecureStream`]: after a byte for
/// the reader's buffer size, each step is a record of a chosen plaintext length (an empty one
/// ends the stream), raw bytes, or a bit flipped in the last record. The reader must hand out
/// exactly the plaintext of the records before the first damage or end, and then end: cleanly
/// only after an end record, with an error at a cut or at any damage — never unverified bytes.
pub fn secure_records(data: &[u8]) {
    let (size, mut steps) = split_first(data);
    // Up to 265 KB: past 131 KB, bulk records are opened in the reader's own buffer.
    let read_size = 1 + usize::from(size) * 1040;
    let (mut sender, receiver) = noise_pair();
    let (mut wire, mut good, mut sealed) = (Vec::new(), Vec::new(), 0);
    // Whether the stream is still undamaged, and whether its end record came while it was.
    let (mut intact, mut ended) = (true, false);
    // The last record: where it starts and ends on the wire, and what was good before it, if
    // it counted.
    let mut last: Option<(usize, usize, Option<usize>)> = None;
    while let Some((&op, rest)) = steps.split_first() {
        steps = rest;
        match op % 3 {
            0 => {
                let Some((len, rest)) = steps.split_first_chunk::<2>() else {
                    break;
                };
                steps = rest;
                let len = usize::from(u16::from_be_bytes(*len)) % (MAX_PLAIN + 1);
                if sealed + len > MAX_SEALED {
                    break;
                }
                sealed += len;
                let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let mut record = vec![0u8; len + TAG];
                let n = sender
                    .write_message(&plain, &mut record)
                    .expect("a record seals");
                let counted = (intact && !ended).then_some(good.len());
                let start = wire.len();
                wire.extend_from_slice(&(n as u16).to_be_bytes());
                wire.extend_from_slice(&record[..n]);
                last = Some((start, wire.len(), counted));
                if counted.is_some() {
                    good.extend_from_slice(&plain);
                    ended = len == 0;
                }
            }
            1 => {
                let Some((&n, rest)) = steps.split_first() else {
                    break;
                };
                let raw = &rest[..rest.len().min(usize::from(n))];
                steps = &rest[raw.len()..];
                wire.extend_from_slice(raw);
                intact &= ended || raw.is_empty();
            }
            _ => {
                let Some((&at, rest)) = steps.split_first() else {
                    break;
                };
                steps = rest;
                if let Some((start, end, counted)) = last.take() {
                    // Within the record (raw bytes may follow it).
                    let i = start + usize::from(at) % (end - start);
                    wire[i] ^= 1 << (at % 8);
                    if let Some(before) = counted {
                        // The damaged record (an end record too) and all after it are lost.
                        good.truncate(before);
                        (intact, ended) = (false, false);
                    }
                }
            }
        }
    }
    let mut stream = SecureStream::new(&wire[..], receiver);
    let mut out = Vec::new();
    let result = runtime().block_on(async {
        let mut buf = vec![0u8; read_size];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    });
    assert!(
        out == good,
        "read {} bytes, not the {} sent",
        out.len(),
        good.len()
    );
    assert_eq!(result.is_ok(), ended, "{result:?}");
}
