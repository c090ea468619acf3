//! Subcommands, runc-compatible: flags in, calls on container/ out, runc's
//! output shapes. Errors become one line on stderr, `husk: <what>: <why>`,
//! and an error entry in --log.

mod create;
mod delete;
mod events;
mod exec;
mod foreground;
mod info;
mod kill;
pub mod log;
mod start;
mod state;
mod update;

use clap::{Parser, Subcommand};
use std::io::Write;

/// Print a line on stdout; a closed stdout (`husk list | head`) ends husk
/// quietly, as it would any Unix tool. (SIGPIPE stays ignored: husk writes
/// to hooks' stdin and sockets that may close early.)
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::emit(&format!($($arg)*)) };
}
pub(crate) use out;

pub fn emit(line: &str) {
    let mut o = std::io::stdout().lock();
    if writeln!(o, "{line}").and_then(|_| o.flush()).is_err() {
        std::process::exit(0);
    }
}
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "husk",
    version,
    about = "husk: a runc-compatible OCI container runtime"
)]
pub struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = "/run/husk")]
    pub root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (before the command, as runc takes
    /// it); husk decides rootless mode itself
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported)
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container
    Create(create::CreateArgs),
    /// Start a created container
    Start(start::StartArgs),
    /// Create and start a container, then wait for it
    Run(create::RunArgs),
    /// Output the state of a container
    State(state::StateArgs),
    /// List containers
    List(state::ListArgs),
    /// Send a signal to a container's init
    Kill(kill::KillArgs),
    /// Delete a container
    Delete(delete::DeleteArgs),
    /// List the processes of a container
    Ps(state::PsArgs),
    /// Run a new process in a container
    Exec(exec::ExecArgs),
    /// Write a default config.json
    Spec(info::SpecArgs),
    /// Show what this runtime supports (OCI features document)
    Features,
    /// Suspend all processes of a container
    Pause(kill::IdArg),
    /// Resume a paused container
    Resume(kill::IdArg),
    /// Change a container's resource limits
    Update(update::UpdateArgs),
    /// Stats and OOM events of a container
    Events(events::EventsArgs),
    /// Checkpoint a container (not supported)
    Checkpoint(info::Unsupported),
    /// Restore a container (not supported)
    Restore(info::Unsupported),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    if let Err(e) = log::Logger::install(cli.log.as_deref(), &cli.log_format, cli.debug) {
        eprintln!("husk: {e}");
        return 1;
    }
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            ::log::error!("{msg}");
            eprintln!("husk: {msg}");
            1
        }
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup: the systemd cgroup driver needs a running systemd, and none was found");
    }
    if matches!(cli.cmd, Cmd::Create(_) | Cmd::Run(_) | Cmd::Exec(_)) {
        crate::sys::exe::ensure_sealed().map_err(|e| anyhow::anyhow!(e))?;
    }
    let store = crate::container::Store::new(&cli.root);
    match &cli.cmd {
        Cmd::Create(a) => create::create(&store, a),
        Cmd::Run(a) => create::run(&store, a),
        Cmd::Start(a) => start::start(&store, a),
        Cmd::State(a) => state::state(&store, a),
        Cmd::List(a) => state::list(&store, a),
        Cmd::Ps(a) => state::ps(&store, a),
        Cmd::Kill(a) => kill::kill(&store, a),
        Cmd::Pause(a) => kill::pause(&store, a, true),
        Cmd::Resume(a) => kill::pause(&store, a, false),
        Cmd::Update(a) => update::update(&store, a),
        Cmd::Events(a) => events::events(&store, a),
        Cmd::Delete(a) => delete::delete(&store, a),
        Cmd::Exec(a) => exec::exec(&store, a),
        Cmd::Spec(a) => info::spec(a),
        Cmd::Features => info::features(),
        Cmd::Checkpoint(_) | Cmd::Restore(_) => {
            anyhow::bail!("checkpoint/restore is not supported by husk")
        }
    }
}
