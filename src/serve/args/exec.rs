//! The flags of `taojie serve exec`, and the service's options they make.
use std::time::Duration;

use clap::Args;

use crate::exec::{self, DEFAULT_MAX_PROCS};
use crate::flags::in_place;
use crate::secure::flags::ServerKeyArgs;
use crate::server::PreAuthArgs;

/// Flags of `taojie serve exec`.
#[derive(Args, Debug, Clone)]
#[command(mut_args(in_place("key", |a| a.help(
    "Key file shared with the clients (make one with `taojie keygen FILE`)"
))))]
pub struct ExecArgs {
    /// TCP address of the native exec service, e.g. 127.0.0.1:9512 [default: 127.0.0.1:9512
    /// unless only --classic is given]
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub listen: Option<String>,
    /// Key flags
    #[command(flatten)]
    pub keys: ServerKeyArgs,
    /// Let clients ask for a shell command line (`taojie exec --shell`), run as `sh -c`;
    /// without it only a program and its arguments run, no shell
    #[arg(long, conflicts_with = "allow")]
    pub shell: bool,
    /// Only this program may run (repeatable). Matched exactly against the program name the
    /// client sends: `--allow ls` allows `ls` (found on the server's PATH), not `/bin/ls`.
    /// Its arguments are not restricted: `--allow find` also allows `find / -exec sh -c ...`;
    /// for fixed command lines use --allow-exact
    #[arg(long, value_name = "PROGRAM")]
    pub allow: Vec<String>,
    /// Only this exact command line may run (repeatable): the program and every argument,
    /// split as a shell would (`--allow-exact 'df -h /srv'`); the same program with other
    /// arguments is refused. With --allow, a request runs if either allows it
    #[arg(long, value_name = "CMD ARGS", conflicts_with_all = ["shell", "classic"])]
    pub allow_exact: Vec<String>,
    /// Kill a command (its whole process group) after this many seconds; the client gets
    /// exit status 124, as from timeout(1)
    #[arg(long, value_name = "SECS", value_parser = crate::flags::positive_secs)]
    pub timeout: Option<f64>,
    /// Commands running at once; one more is refused with an error
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PROCS)]
    pub max_procs: usize,
    /// Also serve the seed's protocol on this TCP address: a raw command in, run by `sh -c`;
    /// `struct.pack('i', n)` and the output (stderr if any, else stdout) back. With --key the
    /// seed's HMAC challenge (SHA-256) comes first
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port, conflicts_with = "allow")]
    pub classic: Option<String>,
    /// Run without a key. Only on loopback addresses, and anyone who can connect may run
    /// commands as you
    #[arg(long, conflicts_with_all = ["key", "identity"])]
    pub insecure_no_auth: bool,
    /// Limits on connections that have not proven their key yet
    #[command(flatten)]
    pub preauth: PreAuthArgs,
}

impl From<ExecArgs> for exec::ServeOptions {
    fn from(a: ExecArgs) -> Self {
        exec::ServeOptions {
            listen: a.listen,
            classic: a.classic,
            keys: a.keys.keys(a.insecure_no_auth),
            shell: a.shell,
            allow: a.allow,
            allow_exact: a.allow_exact,
            timeout: a.timeout.map(|s| Duration::from_secs_f64(s.max(0.0))),
            max_procs: a.max_procs,
            preauth: a.preauth.caps().into(),
        }
    }
}
