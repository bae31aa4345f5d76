//! Build script: in release builds of the taojie binary on x86-64 Linux (linked by rustc's LLD),
//! asks the linker to place the functions listed in `link/hot-functions.txt` side by side, so a
//! server keeps a small contiguous block of code resident instead of 64 KiB windows of the
//! whole text (see `link/collect.sh`, which writes the list, and BENCHMARKS.md).
use std::env;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=link/hot-functions.txt");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let target = env::var("TARGET").unwrap_or_default();
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link")
        .join("hot-functions.txt");
    // LLD is rustc's default linker on this target; the list is a hint, so a name it no longer
    // finds (names change with the compiler and the dependencies) is not worth a warning.
    if release && target == "x86_64-unknown-linux-gnu" && order.is_file() {
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            order.display()
        );
    }
}
