//! Hand-made peers of the native files protocol: the real handshake, then whatever messages a
//! hostile peer chooses to send, written out frame by frame (not through taojie's own sender
//! and receiver, whose rules are what the tests check).
use taojie::framing::{Frame, FrameError, FramedStream};
use taojie::secure::SecureStream;
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A native files connection after hello, driven by hand.
pub type Wire = FramedStream<SecureStream<TcpStream>>;

/// A client: real handshake with the key in `key`, then hello for the files service.
pub async fn client(addr: &str, key: &Path) -> Wire {
    let key = taojie::auth::Key::load(key).unwrap();
    let s = TcpStream::connect(addr).await.unwrap();
    let auth = taojie::secure::ClientAuth::Psk(key);
    let (s, _) = taojie::secure::client(s, &auth).await.unwrap();
    let mut t = FramedStream::new(s);
    taojie::framing::hello::client(&mut t, "files")
        .await
        .unwrap();
    t
}

/// A server on 127.0.0.1 port 0 holding the key in `key`: runs `serve` on the first
/// connection (after the handshake and hello) and returns its address and the task.
pub async fn server<F, Fut, T>(key: &Path, serve: F) -> (String, tokio::task::JoinHandle<T>)
where
    F: FnOnce(Wire) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let key = taojie::auth::Key::load(key).unwrap();
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let auth = taojie::secure::ServerAuth {
            psk: Some(key),
            ..Default::default()
        };
        let (s, _) = taojie::secure::server(s, &auth).await.unwrap();
        let mut t = FramedStream::new(s);
        taojie::framing::hello::server(&mut t, "files")
            .await
            .unwrap();
        serve(t).await
    });
    (addr, task)
}

/// A header for `data` as `name` with `mode`.
pub fn header(name: &str, data: &[u8], mode: u32) -> FileHeader {
    FileHeader {
        name: name.into(),
        size: data.len() as u64,
        mode,
        mtime_ns: 1_700_000_000_000_000_000,
    }
}

/// The sender's side of one file (at most one 4 MiB segment) after its offer (`put_file` or
/// `file`) went out: the receiver's answer, and after an `accept` the bytes, the segment
/// hash and the receiver's verdict, which is returned.
pub async fn send_offered(t: &mut Wire, data: &[u8]) -> Result<Msg, FrameError> {
    match t.recv_control::<Msg>().await? {
        Msg::Accept { offset: 0 } => {}
        other => return Ok(other),
    }
    for chunk in data.chunks(64 * 1024) {
        t.send_data(1, bytes::Bytes::copy_from_slice(chunk)).await?;
    }
    let hash = blake3::hash(data).to_hex().to_string();
    t.send_control(&Msg::Segment { index: 0, hash }).await?;
    t.recv_control().await
}

/// The receiver's side of one offered file of `size` bytes (at most one segment): accepts
/// from byte 0, collects the bytes and tells the sender they were verified.
pub async fn take(t: &mut Wire, size: u64) -> Vec<u8> {
    t.send_control(&Msg::Accept { offset: 0 }).await.unwrap();
    let mut got = Vec::new();
    loop {
        match t.recv().await.unwrap() {
            Frame::Data { bytes, .. } => got.extend_from_slice(&bytes),
            Frame::Control(json) => match serde_json::from_slice(&json).unwrap() {
                Msg::Segment { .. } if got.len() as u64 == size => break,
                other => panic!("unexpected {other:?} after {} bytes", got.len()),
            },
        }
    }
    let blake3 = blake3::hash(&got).to_hex().to_string();
    let received = size;
    t.send_control(&Msg::Verified { blake3, received })
        .await
        .unwrap();
    got
}
