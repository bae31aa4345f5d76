//! A files client that is not taojie: `tests/peers/files_peer.py` speaks protocol 2 with
//! another Noise library (tj2.py), the control messages as JSON, and BLAKE3 written from its
//! specification (b3.py: each segment's chaining value, the root merged from them). It puts,
//! gets, lists, and resumes both ways against the real server; the server's verdicts and
//! hashes must agree with its own.
use super::*;

/// The segment size of the protocol (files::tree::SEGMENT).
const SEGMENT: usize = 4 << 20;

/// Runs `files_peer.py MODE ARGS` (bounded: pure-Python BLAKE3 is slow); its JSON report.
fn peer(fx: &Fixture, mode: &str, addr: &str, args: &[&str]) -> serde_json::Value {
    let script = common::peer_script("files_peer.py");
    let key = fx.s("key");
    let mut all = vec![script.as_str(), mode, addr, key.as_str()];
    all.extend_from_slice(args);
    let (st, out, err) = run_program("python3", &all, b"", Duration::from_secs(300));
    assert!(st.success(), "files_peer.py {mode}: {err}");
    json(&String::from_utf8_lossy(&out))
}

#[test]
fn an_independent_client_puts_gets_and_lists() {
    if !need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    random_file(&fx.p("src/up.bin"), 300_000, 41);
    let r = peer(&fx, "put", &addr, &[&fx.s("src/up.bin"), "up.bin"]);
    assert_eq!(r["verdict"]["type"], "verified", "{r}");
    assert_eq!(
        r["verdict"]["blake3"], r["blake3"],
        "the two sides' hashes: {r}"
    );
    assert!(same(&fx.p("src/up.bin"), &fx.p("root/up.bin")));
    // taojie's own client agrees on what arrived.
    let (ok, out, err) = fx.run(&["get", &addr, "up.bin", "-o", &fx.s("out"), "--json"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["files"][0]["blake3"], r["blake3"], "{out}");

    random_file(&fx.p("root/down.bin"), 200_000, 43);
    std::fs::create_dir(fx.p("root/sub")).unwrap();
    let got = fx.p("pyout");
    std::fs::create_dir(&got).unwrap();
    let r = peer(&fx, "get", &addr, &["down.bin", got.to_str().unwrap()]);
    assert_eq!(r["files"][0]["received"], 200_000, "{r}");
    assert!(same(&fx.p("root/down.bin"), &got.join("down.bin")));

    let r = peer(&fx, "ls", &addr, &[]);
    let mut names: Vec<(String, String, u64)> = r["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("down.bin".into(), "file".into(), 200_000),
            ("sub".into(), "dir".into(), names[1].2),
            ("up.bin".into(), "file".into(), 300_000),
        ]
    );
}

/// A file of two segments, each way: the Python client hangs up in the second segment; the
/// next attempt starts where the verified first segment ends and sends only the rest.
#[test]
fn an_independent_client_resumes_a_put_and_a_get() {
    if !need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let size = SEGMENT + 300_000;
    let cut = (SEGMENT + 100_000).to_string();

    random_file(&fx.p("src/big.bin"), size, 47);
    let file = fx.s("src/big.bin");
    let r = peer(&fx, "put", &addr, &[&file, "big.bin", "--stop-after", &cut]);
    assert_eq!(r["stopped"], true, "{r}");
    assert!(
        !fx.p("root/big.bin").exists(),
        "a partial file at the final name"
    );
    let r = peer(&fx, "put", &addr, &[&file, "big.bin"]);
    assert_eq!(
        r["offset"], SEGMENT,
        "the put did not resume after segment 0: {r}"
    );
    assert_eq!(r["sent"], size - SEGMENT, "{r}");
    assert_eq!(r["verdict"]["type"], "verified", "{r}");
    assert_eq!(r["verdict"]["blake3"], r["blake3"], "{r}");
    assert!(same(&fx.p("src/big.bin"), &fx.p("root/big.bin")));

    let got = fx.p("pyout");
    std::fs::create_dir(&got).unwrap();
    let out = got.to_str().unwrap();
    let r = peer(&fx, "get", &addr, &["big.bin", out, "--stop-after", &cut]);
    assert_eq!(
        (&r["stopped"], &r["kept"]),
        (&true.into(), &SEGMENT.into()),
        "{r}"
    );
    let r = peer(&fx, "get", &addr, &["big.bin", out]);
    let f = &r["files"][0];
    assert_eq!(
        (&f["offset"], &f["received"]),
        (&SEGMENT.into(), &(size - SEGMENT).into()),
        "{r}"
    );
    assert!(same(&fx.p("src/big.bin"), &got.join("big.bin")));
}
