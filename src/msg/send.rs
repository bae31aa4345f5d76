//! `taojie msg send` and `taojie msg who`: one message (and files) to a host, a name, every
//! member or every host of a subnet, acknowledged; and the list of who is on the LAN.
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use super::attach::{self, Offer};
use super::members::Member;
use super::node::{Event, Node};
use super::text::{Encoding, neutralise_name};
use super::{Common, PortUse, Started, targets};

/// How long peers take to answer a broadcast entry: up to a second by the protocol's advice,
/// and a margin.
pub const ANSWER_DELAY: Duration = Duration::from_millis(1500);
/// How long to wait for the answer to an entry sent to one host.
const DIRECT_ANSWER: Duration = Duration::from_millis(700);
/// Messages in flight at once for --all and --subnet.
const PARALLEL: usize = 256;

/// What `taojie msg send` sends, and to whom.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Who you are on the LAN, and where.
    pub common: Common,
    /// HOST (IP or IP:PORT) or NAME and the TEXT; only TEXT with --all or --subnet.
    pub words: Vec<String>,
    /// Attach a file (repeat for several); served over TCP until fetched or --wait passes.
    pub file: Vec<PathBuf>,
    /// Send to every member that answers on the LAN.
    pub all: bool,
    /// Send to every host address of an IPv4 subnet (at most a /16; private or loopback
    /// ranges unless --force).
    pub subnet: Option<String>,
    /// Allow --subnet on a public range.
    pub force: bool,
    /// Seconds to keep attached files on offer.
    pub wait: f64,
}

/// How `taojie msg who` asks.
#[derive(Debug, Clone)]
pub struct WhoOptions {
    /// Who you are on the LAN, and where.
    pub common: Common,
    /// Seconds to wait for answers (peers wait up to a second before answering).
    pub wait: f64,
    /// One JSON object per member.
    pub json: bool,
}

/// Runs `taojie msg who`.
pub async fn who(args: WhoOptions) -> Result<ExitCode> {
    let mut started = args.common.start(PortUse::Preferred).await?;
    started.node.announce(&[]).await;
    let wait = Duration::from_secs_f64(args.wait.clamp(0.0, 60.0));
    gather(&mut started, wait, |_| false).await;
    let members = started.node.members();
    if !started.fallback {
        started.node.leave().await;
    }
    started.stop.cancel();
    if args.json {
        for m in &members {
            println!("{}", serde_json::to_string(m)?);
        }
    } else {
        print_members(&members);
    }
    Ok(ExitCode::SUCCESS)
}

/// The members as a table: name, group, user@host, address, client.
pub fn print_members(members: &[Member]) {
    if members.is_empty() {
        println!("(nobody answered)");
    }
    for m in members {
        println!(
            "{:<16} {:<12} {:<24} {:<21} {}",
            neutralise_name(m.name()),
            neutralise_name(&m.group),
            format!("{}@{}", neutralise_name(&m.user), neutralise_name(&m.host)),
            m.addr,
            neutralise_name(&m.version)
        );
    }
}

/// Reads events for `wait`, or until `done` says what came is enough.
async fn gather(started: &mut Started, wait: Duration, mut done: impl FnMut(&Member) -> bool) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, started.events.recv()).await {
        if let Event::Entry(m) = event
            && done(&m)
        {
            return;
        }
    }
}

/// Runs `taojie msg send`.
pub async fn run(args: SendOptions) -> Result<ExitCode> {
    let (target, text) = match (&args.words[..], args.all || args.subnet.is_some()) {
        ([text], true) => (None, text.clone()),
        ([target, text], false) => (Some(target.clone()), text.clone()),
        (_, true) => bail!("with --all or --subnet, give only the TEXT"),
        (_, false) => bail!("give a HOST or NAME and the TEXT"),
    };
    let offers: Vec<Offer> = args
        .file
        .iter()
        .enumerate()
        .map(|(i, p)| Offer::new(i as u64, p))
        .collect::<Result<_>>()?;
    let mut started = args.common.start(PortUse::Preferred).await?;

    let recipients: Vec<SocketAddr> = if let Some(net) = &args.subnet {
        let hosts = targets::subnet_hosts(net, args.force)?;
        for h in &hosts {
            started.node.announce_to(*h).await;
        }
        gather(&mut started, DIRECT_ANSWER, |_| false).await;
        hosts
    } else if args.all {
        started.node.announce(&[]).await;
        gather(&mut started, ANSWER_DELAY, |_| false).await;
        let all: Vec<SocketAddr> = started.node.members().iter().map(|m| m.addr).collect();
        if all.is_empty() {
            bail!("nobody answered on the LAN");
        }
        all
    } else {
        let target = target.unwrap_or_default();
        vec![find(&mut started, &target).await?]
    };

    let node = started.node.clone();
    let tcp = if offers.is_empty() {
        None
    } else {
        let at = node.local_addr()?;
        Some(
            crate::server::bind_tcp(at)
                .with_context(|| format!("serve attachments on tcp {at}"))?,
        )
    };
    let number = node.next_number();
    let (done_tx, mut done_rx) = mpsc::channel(PARALLEL);
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    for to in recipients.iter().copied() {
        // Peers that never said which encoding they speak get GBK, as Feiq and the seed.
        let enc = node
            .member(to.ip())
            .map_or(Encoding::Gbk, |m| m.send_encoding());
        let list = attach::encode_list(&offers, enc);
        let (node, text, done, limit) =
            (node.clone(), text.clone(), done_tx.clone(), limit.clone());
        // Every recipient of one message gets the same packet number, so a request for a
        // file names the one message whatever host asks.
        let files = (!offers.is_empty()).then_some(number);
        tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            let r = node
                .send_message(to, &text, files.map(|n| (n, &list[..])), enc)
                .await;
            let _ = done.send((to, r)).await;
        });
    }
    drop(done_tx);
    let mut acked = HashSet::new();
    let mut last_error = None;
    while let Some((to, r)) = done_rx.recv().await {
        match r {
            Ok(_) => {
                let who = node
                    .member(to.ip())
                    .map(|m| format!("{} ({to})", neutralise_name(m.name())))
                    .unwrap_or_else(|| to.to_string());
                eprintln!("acknowledged by {who}");
                acked.insert(to.ip());
            }
            Err(e) => last_error = Some(e),
        }
    }
    let mut code = ExitCode::SUCCESS;
    if acked.is_empty() {
        let e = last_error.unwrap_or_else(|| anyhow::anyhow!("no recipient"));
        finish(&started, &recipients).await;
        return Err(e);
    }
    if args.subnet.is_none() && acked.len() < recipients.len() {
        eprintln!(
            "taojie: error: {} of {} members did not acknowledge",
            recipients.len() - acked.len(),
            recipients.len()
        );
        code = ExitCode::FAILURE;
    }
    if let Some(listener) = tcp {
        let wait = Duration::from_secs_f64(args.wait.clamp(0.0, 86_400.0));
        eprintln!(
            "serving {} file(s) on tcp {} for up to {:.0}s",
            offers.len(),
            node.local_addr()?,
            wait.as_secs_f64()
        );
        let left = attach::serve(listener, number, offers, acked, wait).await;
        if !left.is_empty() {
            eprintln!("taojie: error: not fetched in time: {}", left.join(", "));
            code = ExitCode::FAILURE;
        }
    }
    finish(&started, &recipients).await;
    Ok(code)
}

/// Says goodbye to the hosts we introduced ourselves to (unless a listener speaks for this
/// host) and stops the receive loop.
async fn finish(started: &Started, recipients: &[SocketAddr]) {
    if !started.fallback && recipients.len() <= PARALLEL {
        for to in recipients {
            started.node.exit_to(*to).await;
        }
    }
    started.stop.cancel();
}

/// Finds where `target` is: an address, a contact, a member answering on the LAN under that
/// name, or a host name. Introduces us to it (a unicast entry), so the peer lists us and says
/// which encoding it speaks.
async fn find(started: &mut Started, target: &str) -> Result<SocketAddr> {
    let node: Arc<Node> = started.node.clone();
    let addr = match targets::parse_addr(target) {
        Some(a) => a,
        None => match targets::contacts()?.get(target) {
            Some(a) => *a,
            None => {
                node.announce(&[]).await;
                let name = target.to_string();
                gather(started, ANSWER_DELAY, |m| m.nick == name || m.user == name).await;
                match node.named(target).as_slice() {
                    [m] => return introduce(started, m.addr).await,
                    [] => resolve_host(target).await.with_context(|| {
                        format!("no member or contact named {target:?} (see `taojie msg who`)")
                    })?,
                    many => bail!(
                        "{} members are named {target:?}: {}; give an address",
                        many.len(),
                        many.iter()
                            .map(|m| m.addr.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        },
    };
    introduce(started, addr).await
}

async fn introduce(started: &mut Started, addr: SocketAddr) -> Result<SocketAddr> {
    if !started.fallback {
        started.node.announce_to(addr).await;
        gather(started, DIRECT_ANSWER, |m| m.addr.ip() == addr.ip()).await;
    }
    Ok(addr)
}

async fn resolve_host(name: &str) -> Result<SocketAddr> {
    let found = tokio::net::lookup_host((name, super::packet::PORT)).await?;
    found
        .into_iter()
        .find(SocketAddr::is_ipv4)
        .context("no IPv4 address")
}
