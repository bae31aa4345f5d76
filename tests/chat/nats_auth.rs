//! Brokers joining a nats-server that wants to know who they are, as the README promises:
//! a token (`--nats-token-file`) and a credentials file (`--nats-creds`: a user JWT and its
//! NKey seed, for a server in operator mode). A broker without what the server wants fails at
//! start with one line, never seeming to run alone.
use std::path::Path;

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

use super::WAIT;
use super::common::run_program;
use super::nats::{Nats, broker, nc_member, who_until};

/// Starts `serve chat` against `nats` with `extra` and checks it fails at start, saying it
/// cannot reach NATS because NATS did not let it in.
fn refused_at_start(nats: &Nats, extra: &[&str]) {
    let url = nats.url();
    let mut args = vec!["serve", "chat", "--listen", "127.0.0.1:0", "--nats", &url];
    args.extend_from_slice(extra);
    let (status, _, err) = run_program(crate::common::bin(), &args, b"", WAIT);
    assert!(!status.success(), "{extra:?}: started without NATS's leave");
    assert!(
        err.lines()
            .any(|l| l.starts_with("taojie: error: cannot reach NATS")
                && l.to_lowercase().contains("authorization violation")),
        "{extra:?}: {err}"
    );
}

/// A nats-server that wants a token: brokers given it with `--nats-token-file` (a trailing
/// newline is not part of it) carry lines between them; a wrong token or none is one clear
/// error line at start and a failure, not a broker that seems to run alone.
#[test]
fn a_token_file_lets_brokers_into_a_nats_server_that_wants_one() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let nats = Nats::start_with(&["--auth", "s3cret-token"]);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let token = token.to_str().unwrap();
    let a = broker(&nats, &["--nats-token-file", token]);
    let b = broker(&nats, &["--nats-token-file", token]);
    let mut on_b = nc_member(&b.addr("chat", "tcp"), "bea", "lobby");
    let mut on_a = nc_member(&a.addr("chat", "tcp"), "ari", "lobby");
    who_until(&mut on_b, "*** in lobby (2): ari, bea");
    on_a.send("across with a token");
    on_b.wait_line("<ari> across with a token");

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    refused_at_start(&nats, &["--nats-token-file", wrong.to_str().unwrap()]);
    refused_at_start(&nats, &[]);
}

/// A JWT as NATS's decentralised auth writes one: header, claims and an Ed25519 signature by
/// `issuer`, each base64url without padding. `nats` is the claims' NATS part.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let claims = json!({
        "jti": format!("TJ{}", &subject[1..]),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature))
}

/// An account's JWT, signed by `operator`: no limits, and JetStream (the names bucket) when
/// `jetstream` (the system account, the server's own, has none).
fn account_jwt(operator: &KeyPair, account: &KeyPair, name: &str, jetstream: bool) -> String {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[key] = json!(-1);
        }
    }
    let nats = json!({
        "limits": limits,
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2,
    });
    jwt(operator, &account.public_key(), name, nats)
}

/// A `.creds` file for a new user of `account`: its JWT and its seed, as `nsc` writes them.
/// `seed` overrides the seed written (another user's: the JWT then is not the writer's).
fn creds(dir: &Path, file: &str, account: &KeyPair, seed: Option<&KeyPair>) -> String {
    let user = KeyPair::new_user();
    let nats = json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    let token = jwt(account, &user.public_key(), file, nats);
    let seed = seed.unwrap_or(&user).seed().unwrap();
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A nats-server in operator mode (it trusts one operator, knows one account, and lets in
/// only users that account signed): brokers given a user's credentials with `--nats-creds`
/// carry lines and names between them; a user of an account the server does not know, a
/// JWT with another user's seed, or no credentials at all is one clear error line at start.
#[test]
fn a_creds_file_lets_brokers_into_a_nats_server_in_operator_mode() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    // The server's own account: nats-server wants one to run JetStream in operator mode.
    let system = KeyPair::new_account();
    let op = jwt(
        &operator,
        &operator.public_key(),
        "taojie-test",
        json!({"type": "operator", "version": 2}),
    );
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "operator: \"{op}\"\nsystem_account: {sys}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {sys}: \"{}\"\n  {}: \"{}\"\n}}\n",
            account_jwt(&operator, &system, "SYS", false),
            account.public_key(),
            account_jwt(&operator, &account, "chat", true),
            sys = system.public_key(),
        ),
    )
    .unwrap();
    let nats = Nats::start_with(&["-c", conf.to_str().unwrap()]);

    let a_creds = creds(dir.path(), "a.creds", &account, None);
    let b_creds = creds(dir.path(), "b.creds", &account, None);
    let a = broker(&nats, &["--nats-creds", &a_creds]);
    let b = broker(&nats, &["--nats-creds", &b_creds]);
    let mut on_b = nc_member(&b.addr("chat", "tcp"), "bea", "lobby");
    let mut on_a = nc_member(&a.addr("chat", "tcp"), "ari", "lobby");
    // Names cross through the JetStream bucket, lines through subjects: both work.
    who_until(&mut on_b, "*** in lobby (2): ari, bea");
    on_a.send("across with credentials");
    on_b.wait_line("<ari> across with credentials");

    // A user of an account the server was never told about.
    let stranger = KeyPair::new_account();
    let foreign = creds(dir.path(), "foreign.creds", &stranger, None);
    refused_at_start(&nats, &["--nats-creds", &foreign]);
    // A JWT the account signed, carried with a seed that is not its user's.
    let thief = KeyPair::new_user();
    let stolen = creds(dir.path(), "stolen.creds", &account, Some(&thief));
    refused_at_start(&nats, &["--nats-creds", &stolen]);
    refused_at_start(&nats, &[]);
}
