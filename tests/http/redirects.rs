//! Redirects on nginx: /r302 → /r301 → /r307 → /mib.bin, and /loop-a ⇄ /loop-b.
use crate::nginx::Nginx;
use crate::{assert_same_file, http, names, write_pattern};

#[test]
fn a_302_301_307_chain_is_followed_to_the_file() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 9);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mib.bin");
    http(&["-o", dest.to_str().unwrap(), &nginx.url("/r302")]).assert_ok();
    assert_same_file(&dest, &nginx.www().join("mib.bin"));
    let hops: Vec<String> = nginx
        .access_lines(4)
        .iter()
        .map(|l| l.split(' ').skip(2).take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        hops,
        ["/r302 302", "/r301 301", "/r307 307", "/mib.bin 200"]
    );
}

#[test]
fn max_redirs_bounds_the_chain() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    write_pattern(&nginx.www().join("mib.bin"), 1, 1);
    http(&["--max-redirs", "2", &nginx.url("/r302")]).assert_error("--max-redirs");
    http(&["--max-redirs", "3", &nginx.url("/r302")]).assert_ok();
    http(&["--max-redirs", "0", &nginx.url("/r302")]).assert_error("redirect");
}

#[test]
fn a_redirect_loop_is_stopped_with_one_error_line() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("loop.bin");
    let run = http(&["-o", dest.to_str().unwrap(), &nginx.url("/loop-a")]);
    run.assert_error("redirect loop");
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
    // Stopped at the first repeat, not after --max-redirs hops.
    assert_eq!(nginx.access_lines(2).len(), 2, "{}", nginx.access_log());
}
