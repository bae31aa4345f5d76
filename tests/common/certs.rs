//! A test certificate authority made in the test (rcgen), and server certificates it signs:
//! a good one for `localhost` and 127.0.0.1, an expired one, one for another name, and one
//! from another authority nobody trusts. PEM files in a temporary directory, for taojie and
//! for OpenSSL, ncat and nginx alike.
#![allow(dead_code)]

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

/// A certificate and its key, as PEM files.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The authority and its server certificates.
pub struct Certs {
    pub dir: tempfile::TempDir,
    /// The test CA's certificate (what `--cacert` trusts).
    pub ca: PathBuf,
    /// For localhost and 127.0.0.1, valid now.
    pub good: Pair,
    /// For localhost and 127.0.0.1, valid only in 2020.
    pub expired: Pair,
    /// Valid now, but for `other.test` only.
    pub wrong_name: Pair,
    /// For localhost and 127.0.0.1, valid now, from an authority nobody trusts.
    pub unknown_issuer: Pair,
}

fn authority(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl Certs {
    /// Makes the authority and every certificate.
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let (ca_params, ca_key, ca_pem) = authority("taojie test CA");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let (rogue_params, rogue_key, _) = authority("nobody's CA");
        let rogue = Issuer::new(rogue_params, rogue_key);
        let local = || vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let write =
            |name: &str, names: Vec<String>, years: Option<(i32, i32)>, by: &Issuer<KeyPair>| {
                let key = KeyPair::generate().unwrap();
                let mut params = CertificateParams::new(names).unwrap();
                params.distinguished_name.push(DnType::CommonName, name);
                if let Some((from, to)) = years {
                    params.not_before = date_time_ymd(from, 1, 1);
                    params.not_after = date_time_ymd(to, 1, 1);
                }
                let cert = params.signed_by(&key, by).unwrap();
                let pair = Pair {
                    cert: dir.path().join(format!("{name}.pem")),
                    key: dir.path().join(format!("{name}.key")),
                };
                std::fs::write(&pair.cert, cert.pem()).unwrap();
                std::fs::write(&pair.key, key.serialize_pem()).unwrap();
                pair
            };
        let good = write("good", local(), None, &issuer);
        let expired = write("expired", local(), Some((2020, 2021)), &issuer);
        let wrong_name = write("wrong", vec!["other.test".to_string()], None, &issuer);
        let unknown_issuer = write("rogue", local(), None, &rogue);
        Certs {
            dir,
            ca,
            good,
            expired,
            wrong_name,
            unknown_issuer,
        }
    }
}
