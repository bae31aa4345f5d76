//! The flags of `taojie serve proxy`, and the proxy's options they make.
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args};

use crate::proxy::{self, Action, Rule};
use crate::server::{LimitArgs, PreAuthArgs};

/// `taojie serve proxy --listen ADDR [--allow RULE]... [--deny RULE]... [--users FILE]`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
RULE is TARGET[:PORTS]: a CIDR (10.0.0.0/8, [fe80::/10]), an address (192.0.2.1, [::1]), a \
host name (example.com), its subdomains (*.example.com) or * (any host), then one port or a \
range (:443, :8000-8999); :PORTS alone is any host. --allow and --deny are checked in the \
order given and the first that matches decides. With none matching, loopback, link-local, \
unspecified and multicast addresses and this host's own addresses are denied, and the rest \
allowed: a name rule matches the name the client asked for, so --allow localhost:8080 opens \
that one local port to clients that ask for it by that name.

Examples:
  taojie serve proxy --listen 127.0.0.1:1080
  curl --socks5-hostname 127.0.0.1:1080 https://example.com/     or: curl -x http://127.0.0.1:1080 ...
  taojie proxy-user add users ann && taojie serve proxy --listen 0.0.0.0:1080 --users users \\
      --deny 10.0.0.0/8 --deny :25
  taojie connect --proxy socks5h://ann:PASSWORD@HOST:1080 example.com:22

Prints `proxy tcp ADDR` once listening. SOCKS5 (CONNECT and UDP ASSOCIATE; no auth, or \
username/password with --users) and HTTP (Proxy-Authorization: Basic with --users) share the \
port. HTTP is CONNECT for a tunnel (https://), or a plain request for an http:// URL \
(curl -x http://PROXY http://...), which goes on to its server with the hop-by-hop and Proxy-* \
headers left out and Connection: close: one request per connection, so a client opens a new \
one for the next. Refusals \
are SOCKS reply codes (2: not allowed by ruleset, 5: refused, ...) or HTTP statuses (403, 407, \
502, 504), and are logged aggregated per client address.")]
pub struct ProxyArgs {
    /// TCP address to listen on, e.g. `127.0.0.1:1080` or `[::1]:0`
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1080", value_parser = crate::addr::host_port)]
    pub listen: String,
    /// Let clients reach destinations matching RULE (see below); repeatable
    #[arg(long, value_name = "RULE", value_parser = allow_rule)]
    pub allow: Vec<Rule>,
    /// Refuse destinations matching RULE; repeatable
    #[arg(long, value_name = "RULE", value_parser = deny_rule)]
    pub deny: Vec<Rule>,
    /// A rule with its action, `allow RULE` or `deny RULE`: the form for a configuration
    /// file, where only one list keeps its order (rule = ["deny 10.0.0.0/8", "allow *"])
    #[arg(long, value_name = "ACTION RULE", value_parser = any_rule)]
    pub rule: Vec<Rule>,
    /// Users who may log in, one `NAME:ARGON2-HASH` line each (write it with `taojie
    /// proxy-user add FILE NAME`); without it the proxy asks no login, so keep it on loopback
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Connections open at once per logged-in user (0: no cap but --max-conns)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_conns_per_user: usize,
    /// Seconds to resolve and connect to a destination
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = crate::flags::positive_secs)]
    pub connect_timeout: f64,
    /// Connection limits
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Limits on connections that have not finished their request and login
    #[command(flatten)]
    pub preauth: PreAuthArgs,
    /// `--allow` and `--deny` merged in the command line's order ([`ProxyArgs::order`]).
    #[arg(skip)]
    pub ordered: Option<Vec<Rule>>,
}

fn allow_rule(s: &str) -> Result<Rule, String> {
    Rule::parse(Action::Allow, s)
}

fn deny_rule(s: &str) -> Result<Rule, String> {
    Rule::parse(Action::Deny, s)
}

fn any_rule(s: &str) -> Result<Rule, String> {
    let (action, rule) = s
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("{s:?}: expected `allow RULE` or `deny RULE`"))?;
    Rule::parse(action.parse()?, rule.trim())
}

impl ProxyArgs {
    /// Puts the rules in the order they were given on the command line (`matches` are
    /// clap's for `serve proxy`); without it, the allows come first.
    pub fn order(&mut self, matches: &ArgMatches) {
        self.ordered = Some(self.rules(Some(matches)));
    }

    fn rules(&self, matches: Option<&ArgMatches>) -> Vec<Rule> {
        let index = |id: &str| -> Vec<usize> {
            matches
                .and_then(|m| m.indices_of(id))
                .map(|i| i.collect())
                .unwrap_or_default()
        };
        let mut all: Vec<(usize, Rule)> = Vec::new();
        // Without indices (no matches): allows, then denies, then rules.
        for (k, (id, rules)) in [
            ("allow", &self.allow),
            ("deny", &self.deny),
            ("rule", &self.rule),
        ]
        .into_iter()
        .enumerate()
        {
            let at = index(id);
            for (n, r) in rules.iter().enumerate() {
                let fallback = k * (usize::MAX / 4) + n;
                all.push((at.get(n).copied().unwrap_or(fallback), r.clone()));
            }
        }
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    }
}

impl From<ProxyArgs> for proxy::ServeOptions {
    fn from(a: ProxyArgs) -> Self {
        let rules = a.ordered.clone().unwrap_or_else(|| a.rules(None));
        proxy::ServeOptions {
            rules,
            listen: a.listen,
            users: a.users,
            max_conns_per_user: a.max_conns_per_user,
            connect_timeout: Duration::from_secs_f64(a.connect_timeout),
            limits: a.limits.to_limits().into(),
            preauth: a.preauth.caps().into(),
        }
    }
}
