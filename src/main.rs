//! The `taojie` binary: parses the command line, sets up logging and the runtime, and turns any
//! error into one line on standard error and a non-zero exit status.
use std::process::ExitCode;

fn main() -> ExitCode {
    let (cli, matches) = taojie::cli::parse();
    // Servers must not stall on a standard error nobody reads; clients keep their few lines
    // in order with the error line printed below.
    let writer = match cli.command {
        taojie::cli::Command::Serve(_)
        | taojie::cli::Command::Listen(_)
        | taojie::cli::Command::Forward(_) => taojie::log::Writer::NonBlocking,
        _ => taojie::log::Writer::Blocking,
    };
    let _log = taojie::log::init(cli.log_format, writer);
    taojie::sys::raise_fd_limit();
    // One transfer needs one thread: handing each body chunk between worker threads costs
    // `taojie http` and `taojie exec` more than the copy itself. `taojie serve --threads 1`
    // runs every service on the one thread too (no hand-off between threads per request);
    // `--threads N` gives N workers. Everything else gets a worker per core.
    // `serve --per-core` runs the first of its per-core runtimes here, on one thread too; the
    // server framework starts the others beside each TCP listener.
    let threads = match &cli.command {
        taojie::cli::Command::Serve(args) if args.per_core => Some(1),
        taojie::cli::Command::Serve(args) => args.threads,
        _ => None,
    };
    let mut builder = match (&cli.command, threads) {
        (taojie::cli::Command::Http(_) | taojie::cli::Command::Exec(_), _) | (_, Some(1)) => {
            tokio::runtime::Builder::new_current_thread()
        }
        (_, Some(n)) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.into());
            b
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taojie: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(taojie::cli::run(cli, &matches)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("taojie: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
