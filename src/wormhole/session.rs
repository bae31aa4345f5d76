//! One wormhole: the code, the SPAKE2 exchange in the `pake` phase, the encrypted `version`
//! phase (whose decryption proves both sides typed the same code), then the application's
//! messages in numbered phases, each encrypted with its own key and delivered in order once.
use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use super::code::Code;
use super::keys::{self, Key, Pake};
use super::mailbox::MailboxClient;
use super::messages::{ClientMsg, MailboxMessage, hex, unhex};

/// The one error both sides print when the codes differ.
pub const WRONG_CODE: &str = "the code was wrong: nobody got anything";

/// The most numbered messages held out of order before the peer is taken for hostile.
const MAX_PENDING: usize = 64;

/// How the code is chosen.
#[derive(Debug, Clone)]
pub enum CodeChoice {
    /// A new nameplate from the server and `n` random words.
    Allocate(usize),
    /// A code the user chose or typed.
    Given(Code),
}

/// Where a wormhole connects and what it says about itself.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The mailbox server, `ws://HOST:PORT/v1`.
    pub relay_url: String,
    /// The application id (both peers use the same).
    pub appid: String,
    /// Our `app_versions`, sent in the version phase.
    pub app_versions: Value,
}

/// An open wormhole with its key established and confirmed.
pub struct Wormhole {
    mailbox: MailboxClient,
    mailbox_id: String,
    nameplate: Option<String>,
    side: String,
    key: Key,
    code: Code,
    next_out: u64,
    next_in: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    /// The peer's `app_versions`.
    pub peer_app_versions: Value,
}

impl std::fmt::Debug for Wormhole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wormhole({:?})", self.code)
    }
}

/// A random side: 5 bytes of hex, as the Python client makes them.
fn new_side() -> String {
    let mut b = [0u8; 5];
    getrandom::fill(&mut b).expect("the system's random source");
    hex(&b)
}

impl Wormhole {
    /// Connects, claims the nameplate, calls `on_code` with the code (to print it) and runs
    /// the key exchange until the peer's version message decrypts. A peer with another code
    /// is [`WRONG_CODE`]; the nameplate is released and the mailbox closed either way.
    pub async fn open(
        opts: &SessionOptions,
        choice: CodeChoice,
        on_code: impl FnOnce(&Code),
    ) -> Result<Wormhole> {
        let side = new_side();
        let mut mailbox = MailboxClient::connect(&opts.relay_url, &opts.appid, &side).await?;
        if let Some(motd) = &mailbox.motd {
            eprintln!("mailbox server: {motd}");
        }
        let code = match choice {
            CodeChoice::Allocate(words) => {
                let nameplate = mailbox.allocate().await?;
                Code::generate(&nameplate, words)
            }
            CodeChoice::Given(code) => code,
        };
        let mailbox_id = mailbox.claim_and_open(code.nameplate()).await?;
        on_code(&code);
        let (pake, msg) = Pake::start(code.as_str(), &opts.appid);
        let body = json!({ "pake_v1": hex(&msg) }).to_string();
        mailbox
            .send(&ClientMsg::Add {
                phase: "pake".into(),
                body: hex(body.as_bytes()),
            })
            .await?;
        let mut w = Wormhole {
            mailbox,
            mailbox_id,
            nameplate: Some(code.nameplate().to_string()),
            side,
            key: Key([0; 32]),
            code,
            next_out: 0,
            next_in: 0,
            pending: BTreeMap::new(),
            peer_app_versions: Value::Null,
        };
        match w.exchange_keys(pake, &opts.app_versions).await {
            Ok(()) => Ok(w),
            Err(e) => {
                let mood = if e.to_string() == WRONG_CODE {
                    "scary"
                } else {
                    "errory"
                };
                w.close(mood).await;
                Err(e)
            }
        }
    }

    /// Reads the peer's pake, sends our version, and waits for the peer's version. Numbered
    /// messages that come early are kept (still sealed) for [`Wormhole::recv`].
    async fn exchange_keys(&mut self, pake: Pake, app_versions: &Value) -> Result<()> {
        let mut pake = Some(pake);
        let mut early: Vec<MailboxMessage> = Vec::new();
        loop {
            let m = self.mailbox.next_message().await?;
            if m.side == self.side {
                continue;
            }
            // The peer has opened the mailbox: the nameplate can go.
            self.release_nameplate().await?;
            match m.phase.as_str() {
                "pake" => {
                    let Some(state) = pake.take() else { continue };
                    let theirs = unhex(&m.body)
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .and_then(|v| v.get("pake_v1")?.as_str().and_then(unhex))
                        .ok_or_else(|| anyhow!("the peer's key exchange message is malformed"))?;
                    self.key = state.finish(&theirs).ok_or_else(|| anyhow!(WRONG_CODE))?;
                    let versions = json!({ "app_versions": app_versions });
                    self.add_sealed("version", versions.to_string().as_bytes())
                        .await?;
                    for m in std::mem::take(&mut early) {
                        if self.take_numbered(&m)? {
                            return Ok(());
                        }
                    }
                }
                "version" if pake.is_none() => {
                    let plain = self.open_sealed(&m)?;
                    let v: Value = serde_json::from_slice(&plain)
                        .context("the peer's version message is not JSON")?;
                    self.peer_app_versions = v.get("app_versions").cloned().unwrap_or(Value::Null);
                    return Ok(());
                }
                _ if pake.is_some() => {
                    if early.len() >= MAX_PENDING {
                        bail!("the peer sent too many messages before its key exchange");
                    }
                    early.push(m);
                }
                _ => {
                    self.take_numbered(&m)?;
                }
            }
        }
    }

    /// Files a numbered peer message (decrypted) for [`Wormhole::recv`]; true if it was
    /// the version message.
    fn take_numbered(&mut self, m: &MailboxMessage) -> Result<bool> {
        if m.phase == "version" {
            let plain = self.open_sealed(m)?;
            let v: Value =
                serde_json::from_slice(&plain).context("the peer's version message is not JSON")?;
            self.peer_app_versions = v.get("app_versions").cloned().unwrap_or(Value::Null);
            return Ok(true);
        }
        // Phases that are not numbers belong to extensions we do not speak.
        let Ok(n) = m.phase.parse::<u64>() else {
            return Ok(false);
        };
        if n < self.next_in || self.pending.contains_key(&n) {
            return Ok(false); // delivered twice by the server
        }
        if self.pending.len() >= MAX_PENDING {
            bail!("the peer sent too many messages out of order");
        }
        let plain = self.open_sealed(m)?;
        self.pending.insert(n, plain);
        Ok(false)
    }

    fn open_sealed(&self, m: &MailboxMessage) -> Result<Vec<u8>> {
        let sealed = unhex(&m.body).ok_or_else(|| anyhow!(WRONG_CODE))?;
        keys::open(&self.key.phase_key(&m.side, &m.phase), &sealed)
            .ok_or_else(|| anyhow!(WRONG_CODE))
    }

    async fn add_sealed(&mut self, phase: &str, plain: &[u8]) -> Result<()> {
        let sealed = keys::seal(&self.key.phase_key(&self.side, phase), plain);
        self.mailbox
            .send(&ClientMsg::Add {
                phase: phase.into(),
                body: hex(&sealed),
            })
            .await
    }

    async fn release_nameplate(&mut self) -> Result<()> {
        if let Some(n) = self.nameplate.take() {
            self.mailbox.release(&n).await?;
        }
        Ok(())
    }

    /// The code of this wormhole.
    pub fn code(&self) -> &Code {
        &self.code
    }

    /// The verifier (equal on both sides exactly when the keys are).
    pub fn verifier(&self) -> [u8; 32] {
        self.key.verifier()
    }

    /// A key derived from the wormhole's key for `purpose`.
    pub fn derive_key(&self, purpose: &str) -> Key {
        self.key.derive(purpose.as_bytes())
    }

    /// Sends a JSON message in the next numbered phase.
    pub async fn send_json(&mut self, v: &Value) -> Result<()> {
        let phase = self.next_out.to_string();
        self.next_out += 1;
        self.add_sealed(&phase, v.to_string().as_bytes()).await
    }

    /// The next numbered message in order, as JSON (an object, or an error).
    pub async fn recv_json(&mut self) -> Result<Value> {
        loop {
            if let Some(plain) = self.pending.remove(&self.next_in) {
                self.next_in += 1;
                let v: Value = serde_json::from_slice(&plain)
                    .context("the peer sent a message that is not JSON")?;
                if !v.is_object() {
                    bail!("the peer sent a message that is not a JSON object");
                }
                return Ok(v);
            }
            let m = self.mailbox.next_message().await?;
            if m.side != self.side {
                self.take_numbered(&m)?;
            }
        }
    }

    /// Releases what is still held and closes the mailbox with `mood` (`happy`, `lonely`,
    /// `scary`, `errory`).
    pub async fn close(mut self, mood: &str) {
        let _ = self.release_nameplate().await;
        self.mailbox.close(Some(&self.mailbox_id), mood).await;
    }
}
