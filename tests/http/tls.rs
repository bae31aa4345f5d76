//! HTTPS against nginx with self-signed certificates made here with the openssl CLI.
use std::path::Path;
use std::time::Duration;

use crate::common::run_program;
use crate::nginx::{Cert, Nginx};
use crate::{assert_same_file, http, names, write_pattern};

/// Runs `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let mut all = vec![
        "-C".to_string(),
        dir.display().to_string(),
        "openssl".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    // `env -C DIR` so the relative file names land in `dir`.
    let (status, _, err) = run_program("env", &all, b"", Duration::from_secs(30));
    assert!(status.success(), "openssl {args:?}: {err}");
}

/// A self-signed P-256 certificate for IP 127.0.0.1 only, `basicConstraints` as given:
/// `openssl req -x509` writes CA:TRUE unless told otherwise, and that is what most people
/// hand to curl --cacert.
fn self_signed(dir: &Path, name: &str, ca: bool) -> Cert {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let constraints = format!(
        "basicConstraints=critical,CA:{}",
        ca.to_string().to_uppercase()
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=taojie test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            &constraints,
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
    );
    Cert {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A self-signed CA:TRUE certificate for 127.0.0.1 valid in the year 2000 only
/// (`openssl ca` is the CLI that takes explicit dates).
fn expired(dir: &Path) -> Cert {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\nx509_extensions = ext\n[p]\ncommonName = supplied\n\
         [ext]\nbasicConstraints = critical, CA:TRUE\nsubjectAltName = IP:127.0.0.1\n\
         [req]\ndistinguished_name = dn\n[dn]\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=old",
            "-config",
            "ca.cnf",
            "-keyout",
            "old.key",
            "-out",
            "old.csr",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-selfsign",
            "-config",
            "ca.cnf",
            "-keyfile",
            "old.key",
            "-in",
            "old.csr",
            "-startdate",
            "20000101000000Z",
            "-enddate",
            "20010101000000Z",
            "-out",
            "old.pem",
        ],
    );
    Cert {
        cert: dir.join("old.pem"),
        key: dir.join("old.key"),
    }
}

#[test]
fn a_self_signed_certificate_is_trusted_with_cacert_and_refused_without() {
    if !crate::common::need::tools(&["nginx", "openssl"]) {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let stranger = self_signed(certs.path(), "stranger", true);
    for ca in [true, false] {
        let cert = self_signed(certs.path(), &format!("server-{ca}"), ca);
        let nginx = Nginx::start_tls(&cert);
        write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 11);
        let cacert = cert.cert.to_str().unwrap();
        let url = nginx.tls_url("127.0.0.1", "/mib.bin");
        let url6 = nginx.tls_url("[::1]", "/mib.bin");

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("mib.bin");
        http(&["--cacert", cacert, "-o", dest.to_str().unwrap(), &url]).assert_ok();
        assert_same_file(&dest, &nginx.www().join("mib.bin"));

        let refused = [
            (vec![url.as_str()], "certificate"),
            (
                vec!["--cacert", stranger.cert.to_str().unwrap(), &url],
                "certificate",
            ),
            // The certificate names 127.0.0.1 only: trusting it does not waive the name.
            (vec!["--cacert", cacert, &url6], "not valid for name"),
        ];
        for (args, want) in refused {
            let run = http(&args);
            run.assert_error(want);
            assert!(run.stdout.is_empty(), "CA:{ca} {args:?}");
        }
        // Only the trusted request got as far as nginx.
        assert_eq!(nginx.access_lines(1).len(), 1, "{}", nginx.access_log());
    }
}

#[test]
fn an_expired_certificate_is_refused_even_with_cacert() {
    if !crate::common::need::tools(&["nginx", "openssl"]) {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let cert = expired(certs.path());
    let nginx = Nginx::start_tls(&cert);
    std::fs::write(nginx.www().join("one.bin"), "1").unwrap();
    let url = nginx.tls_url("127.0.0.1", "/one.bin");
    http(&["--cacert", cert.cert.to_str().unwrap(), &url]).assert_error("expired");
}

#[test]
fn a_redirect_from_https_to_http_is_refused() {
    if !crate::common::need::tools(&["nginx", "openssl"]) {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let cert = self_signed(certs.path(), "server", true);
    let nginx = Nginx::start_tls(&cert);
    write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 12);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mib.bin");
    let run = http(&[
        "--cacert",
        cert.cert.to_str().unwrap(),
        "-o",
        dest.to_str().unwrap(),
        &nginx.tls_url("127.0.0.1", "/to-http"),
    ]);
    run.assert_error("https to http");
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
    // The plain server was never asked.
    let log = nginx.access_lines(1);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains(" /to-http 302 "), "{log:?}");
}
