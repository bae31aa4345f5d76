//! The fuzzing inputs replayed on stable Rust: `fuzz/seeds/TARGET/` (real messages, and every
//! crash the fuzzer found) and `fuzz/corpus/TARGET/` (what it found interesting, minimized) go
//! through the same entry point in `taojie::fuzzing` as the fuzz target, which panics on a
//! broken property.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use taojie::fuzzing;

fn replay(target: &str) {
    let entry = fuzzing::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .expect("a fuzzing entry point of that name");
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = std::fs::read_dir(fuzz.join("seeds").join(target)).expect("the target's seeds");
    // A target may have no corpus of its own yet.
    let corpus = std::fs::read_dir(fuzz.join("corpus").join(target)).into_iter();
    let mut failed = Vec::new();
    let mut count = 0;
    for file in seeds.chain(corpus.flatten()) {
        let path = file.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        count += 1;
        if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(count > 0, "no seeds for {target}");
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            replay(stringify!($name));
        })*

        #[test]
        fn every_target_is_replayed() {
            let here = [$(stringify!($name)),*];
            for (name, _) in fuzzing::TARGETS {
                assert!(here.contains(name), "{name} has no replay test");
            }
        }
    };
}

targets!(
    native_frames,
    classic_frames,
    exec_messages,
    files_messages,
    files_state,
    handshake,
    secure_records,
    chat_lines,
    sntp,
    strftime,
    ipmsg,
    http,
    ipcalc,
    proxy_requests,
    files_web,
);
