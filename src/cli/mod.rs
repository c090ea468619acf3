//! Subcommands, runc-compatible: flags in, calls on container/ out, runc's
//! output shapes. Errors become one line on stderr, `husk: <what>: <why>`,
//! and an error entry in --log.

mod args;
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

/// The global flags.
pub struct Global {
    pub root: PathBuf,
    pub log: Option<String>,
    pub log_format: String,
    pub debug: bool,
    pub systemd_cgroup: bool,
}

pub fn main() -> i32 {
    let (g, cmd, m) = match args::argv().and_then(|a| args::parse(&a)) {
        Ok(args::Parsed::Print(text)) => {
            emit(text.trim_end());
            return 0;
        }
        Ok(args::Parsed::Run { global, cmd, m }) => (global, cmd, m),
        Err(e) => {
            eprintln!("husk: {e}");
            return 1;
        }
    };
    let global = match globals(&g) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("husk: {e}");
            return 1;
        }
    };
    if let Err(e) = log::Logger::install(global.log.as_deref(), &global.log_format, global.debug) {
        eprintln!("husk: {e}");
        return 1;
    }
    match dispatch(&global, cmd.name, &m) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            ::log::error!("{msg}");
            eprintln!("husk: {msg}");
            1
        }
    }
}

fn globals(g: &args::Matches) -> Result<Global, String> {
    let log_format = one_of(g, "log-format", &["text", "json"])?;
    Ok(Global {
        root: PathBuf::from(g.value("root").unwrap_or("/run/husk")),
        log: g.value("log").map(String::from),
        log_format,
        debug: g.flag("debug"),
        systemd_cgroup: g.flag("systemd-cgroup"),
    })
}

/// A flag whose value is one of `allowed` (the first is the default).
fn one_of(m: &args::Matches, long: &str, allowed: &[&str]) -> Result<String, String> {
    match m.value(long) {
        None => Ok(allowed[0].to_string()),
        Some(v) if allowed.contains(&v) => Ok(v.to_string()),
        Some(v) => Err(format!(
            "invalid value {v:?} for --{long} (one of: {})",
            allowed.join(", ")
        )),
    }
}

fn common_create(m: &args::Matches) -> Result<create::CommonCreate, String> {
    Ok(create::CommonCreate {
        id: m.id(),
        bundle: PathBuf::from(m.value("bundle").unwrap_or(".")),
        console_socket: m.value("console-socket").map(PathBuf::from),
        pid_file: m.value("pid-file").map(PathBuf::from),
        no_pivot: m.flag("no-pivot"),
        no_new_keyring: m.flag("no-new-keyring"),
        preserve_fds: m.parsed("preserve-fds")?.unwrap_or(0),
    })
}

fn exec_args(m: &args::Matches) -> Result<exec::ExecArgs, String> {
    Ok(exec::ExecArgs {
        id: m.id(),
        command: m.trailing.clone(),
        process: m.value("process").map(PathBuf::from),
        tty: m.flag("tty"),
        console_socket: m.value("console-socket").map(PathBuf::from),
        cwd: m.value("cwd").map(PathBuf::from),
        env: m.values("env"),
        user: m.value("user").map(String::from),
        additional_gids: m.parsed_all("additional-gids")?,
        cap: m.values("cap"),
        no_new_privs: m.flag("no-new-privs"),
        apparmor: m.value("apparmor").map(String::from),
        process_label: m.value("process-label").map(String::from),
        cgroup: m.values("cgroup"),
        ignore_paused: m.flag("ignore-paused"),
        detach: m.flag("detach"),
        pid_file: m.value("pid-file").map(PathBuf::from),
        preserve_fds: m.parsed("preserve-fds")?.unwrap_or(0),
    })
}

fn update_args(m: &args::Matches) -> Result<update::UpdateArgs, String> {
    let s = |k: &str| m.value(k).map(String::from);
    Ok(update::UpdateArgs {
        id: m.id(),
        resources: s("resources"),
        blkio_weight: m.parsed("blkio-weight")?,
        cpu_period: m.parsed("cpu-period")?,
        cpu_quota: m.parsed("cpu-quota")?,
        cpu_share: m.parsed("cpu-share")?,
        cpu_rt_period: m.parsed("cpu-rt-period")?,
        cpu_rt_runtime: m.parsed("cpu-rt-runtime")?,
        cpuset_cpus: s("cpuset-cpus"),
        cpuset_mems: s("cpuset-mems"),
        kernel_memory: s("kernel-memory"),
        kernel_memory_tcp: s("kernel-memory-tcp"),
        memory: s("memory"),
        memory_reservation: s("memory-reservation"),
        memory_swap: s("memory-swap"),
        pids_limit: m.parsed("pids-limit")?,
        l3_cache_schema: s("l3-cache-schema"),
        mem_bw_schema: s("mem-bw-schema"),
    })
}

fn dispatch(g: &Global, cmd: &str, m: &args::Matches) -> anyhow::Result<i32> {
    if g.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup: the systemd cgroup driver needs a running systemd, and none was found");
    }
    let e = |s: String| anyhow::anyhow!(s);
    if matches!(cmd, "create" | "run" | "exec") {
        crate::sys::exe::ensure_sealed().map_err(|x| anyhow::anyhow!(x))?;
    }
    let store = crate::container::Store::new(&g.root);
    let id = || kill::IdArg { id: m.id() };
    match cmd {
        "create" => create::create(
            &store,
            &create::CreateArgs {
                c: common_create(m).map_err(e)?,
            },
        ),
        "run" => create::run(
            &store,
            &create::RunArgs {
                c: common_create(m).map_err(e)?,
                detach: m.flag("detach"),
                keep: m.flag("keep"),
                no_subreaper: m.flag("no-subreaper"),
            },
        ),
        "start" => start::start(&store, &start::StartArgs { id: m.id() }),
        "state" => state::state(&store, &state::StateArgs { id: m.id() }),
        "list" => state::list(
            &store,
            &state::ListArgs {
                quiet: m.flag("quiet"),
                format: one_of(m, "format", &["table", "json"]).map_err(e)?,
            },
        ),
        "ps" => state::ps(
            &store,
            &state::PsArgs {
                id: m.id(),
                format: one_of(m, "format", &["table", "json"]).map_err(e)?,
                ps_args: m.trailing.clone(),
            },
        ),
        "kill" => kill::kill(
            &store,
            &kill::KillArgs {
                id: m.id(),
                signal: m
                    .positionals
                    .get(1)
                    .cloned()
                    .unwrap_or_else(|| "SIGTERM".into()),
                all: m.flag("all"),
            },
        ),
        "pause" => kill::pause(&store, &id(), true),
        "resume" => kill::pause(&store, &id(), false),
        "update" => update::update(&store, &update_args(m).map_err(e)?),
        "events" => events::events(
            &store,
            &events::EventsArgs {
                id: m.id(),
                stats: m.flag("stats"),
                interval: m.value("interval").unwrap_or("5s").to_string(),
            },
        ),
        "delete" => delete::delete(
            &store,
            &delete::DeleteArgs {
                id: m.id(),
                force: m.flag("force"),
            },
        ),
        "exec" => exec::exec(&store, &exec_args(m).map_err(e)?),
        "spec" => info::spec(&info::SpecArgs {
            bundle: PathBuf::from(m.value("bundle").unwrap_or(".")),
            rootless: m.flag("rootless"),
        }),
        "features" => info::features(),
        _ => anyhow::bail!("checkpoint/restore is not supported by husk"),
    }
}
