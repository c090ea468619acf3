//! The command line, parsed by hand from one table per command: runc's
//! conventions (`--flag value`, `--flag=value`, `-f value`, combined short
//! booleans `-dt`, `--bool=false`, `--` ending the flags), global flags
//! before or after the command. A derive-based parser cost more memory
//! than all of a container start (measured: +0.9 MB of code pages and
//! +0.26 MB of heap for clap 4 building its command tree on every run).

/// One flag of a command.
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's name in the help; None for a boolean flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn b(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        value: None,
        help,
    }
}

const fn v(
    long: &'static str,
    short: Option<char>,
    value: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        value: Some(value),
        help,
    }
}

/// One command: its flags, its positional arguments (`[X]` is optional),
/// and whether the rest of the line after them is taken verbatim.
pub struct Command {
    pub name: &'static str,
    pub about: &'static str,
    pub flags: &'static [Flag],
    pub positionals: &'static [&'static str],
    pub trailing: Option<&'static str>,
}

pub const GLOBAL: &[Flag] = &[
    v(
        "root",
        None,
        "DIR",
        "root directory for container state (default /run/husk)",
    ),
    v("log", None, "FILE", "log file (default: stderr)"),
    v("log-format", None, "FORMAT", "text or json"),
    b("debug", None, "debug logging"),
    b("systemd-cgroup", None, "use the systemd cgroup driver"),
    v(
        "rootless",
        None,
        "BOOL",
        "accepted for runc compatibility; husk decides itself",
    ),
    v(
        "criu",
        None,
        "PATH",
        "accepted for runc compatibility (no checkpointing)",
    ),
];

/// run's flags: create's, then its own.
const RUN: &[Flag] = &[
    v(
        "bundle",
        Some('b'),
        "DIR",
        "path to the bundle directory (default .)",
    ),
    v(
        "console-socket",
        None,
        "PATH",
        "unix socket that receives the pty master",
    ),
    v(
        "pid-file",
        None,
        "FILE",
        "file to write the init's host pid to",
    ),
    b(
        "no-pivot",
        None,
        "use MS_MOVE + chroot instead of pivot_root",
    ),
    b(
        "no-new-keyring",
        None,
        "do not create a new session keyring",
    ),
    v(
        "preserve-fds",
        None,
        "N",
        "pass N extra fds (3..3+N) to the container",
    ),
    b("detach", Some('d'), "detach from the container's process"),
    b("keep", None, "keep the container after it exits"),
    b("no-subreaper", None, "do not become a subreaper"),
];

/// create's flags: run's first six.
const CREATE: &[Flag] = RUN.split_at(6).0;

const EXEC: &[Flag] = &[
    v(
        "process",
        Some('p'),
        "FILE",
        "a process.json describing the process",
    ),
    b("tty", Some('t'), "allocate a pty"),
    v(
        "console-socket",
        None,
        "PATH",
        "unix socket that receives the pty master",
    ),
    v("cwd", None, "DIR", "working directory"),
    v(
        "env",
        Some('e'),
        "KEY=VALUE",
        "add to the environment (repeatable)",
    ),
    v("user", Some('u'), "UID[:GID]", "user to run as"),
    v(
        "additional-gids",
        Some('g'),
        "GID",
        "additional group (repeatable)",
    ),
    v("cap", Some('c'), "CAP", "add a capability (repeatable)"),
    b("no-new-privs", None, "set no_new_privs"),
    v("apparmor", None, "PROFILE", "AppArmor profile"),
    v("process-label", None, "LABEL", "SELinux label"),
    v(
        "cgroup",
        None,
        "PATH",
        "sub-cgroup to join (refused: not supported)",
    ),
    b("ignore-paused", None, "exec even into a paused container"),
    b("detach", Some('d'), "detach from the process"),
    v(
        "pid-file",
        None,
        "FILE",
        "file to write the process's host pid to",
    ),
    v(
        "preserve-fds",
        None,
        "N",
        "pass N extra fds (3..3+N) to the process",
    ),
];

const UPDATE: &[Flag] = &[
    v(
        "resources",
        Some('r'),
        "FILE",
        "JSON file of linux.resources (- for stdin)",
    ),
    v("blkio-weight", None, "N", ""),
    v("cpu-period", None, "N", ""),
    v("cpu-quota", None, "N", ""),
    v("cpu-share", None, "N", ""),
    v("cpu-rt-period", None, "N", ""),
    v("cpu-rt-runtime", None, "N", ""),
    v("cpuset-cpus", None, "LIST", ""),
    v("cpuset-mems", None, "LIST", ""),
    v("kernel-memory", None, "BYTES", ""),
    v("kernel-memory-tcp", None, "BYTES", ""),
    v("memory", None, "BYTES", ""),
    v("memory-reservation", None, "BYTES", ""),
    v("memory-swap", None, "BYTES", ""),
    v("pids-limit", None, "N", ""),
    v("l3-cache-schema", None, "SCHEMA", ""),
    v("mem-bw-schema", None, "SCHEMA", ""),
];

const ID: &[&str] = &["ID"];

pub const COMMANDS: &[Command] = &[
    Command {
        name: "create",
        about: "Create a container",
        flags: CREATE,
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "start",
        about: "Start a created container",
        flags: &[],
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "run",
        about: "Create and start a container, then wait for it",
        flags: RUN,
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "state",
        about: "Output the state of a container",
        flags: &[],
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "list",
        about: "List containers",
        flags: &[
            b("quiet", Some('q'), "print only the ids"),
            v("format", Some('f'), "FORMAT", "table or json"),
        ],
        positionals: &[],
        trailing: None,
    },
    Command {
        name: "kill",
        about: "Send a signal (default SIGTERM) to a container's init",
        flags: &[b("all", Some('a'), "signal every process of the container")],
        positionals: &["ID", "[SIGNAL]"],
        trailing: None,
    },
    Command {
        name: "delete",
        about: "Delete a container",
        flags: &[b("force", Some('f'), "kill a running container first")],
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "ps",
        about: "List the processes of a container",
        flags: &[v("format", Some('f'), "FORMAT", "table or json")],
        positionals: ID,
        trailing: Some("PS_ARGS"),
    },
    Command {
        name: "exec",
        about: "Run a new process in a container",
        flags: EXEC,
        positionals: ID,
        trailing: Some("COMMAND"),
    },
    Command {
        name: "spec",
        about: "Write a default config.json",
        flags: &[
            v(
                "bundle",
                Some('b'),
                "DIR",
                "where to write config.json (default .)",
            ),
            b("rootless", None, "a spec for a rootless container"),
        ],
        positionals: &[],
        trailing: None,
    },
    Command {
        name: "features",
        about: "Show what this runtime supports (OCI features document)",
        flags: &[],
        positionals: &[],
        trailing: None,
    },
    Command {
        name: "pause",
        about: "Suspend all processes of a container",
        flags: &[],
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "resume",
        about: "Resume a paused container",
        flags: &[],
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "update",
        about: "Change a container's resource limits",
        flags: UPDATE,
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "events",
        about: "Stats and OOM events of a container",
        flags: &[
            b("stats", None, "print the stats once and exit"),
            v("interval", None, "DURATION", "stats interval (default 5s)"),
        ],
        positionals: ID,
        trailing: None,
    },
    Command {
        name: "checkpoint",
        about: "Checkpoint a container (not supported)",
        flags: &[],
        positionals: &[],
        trailing: Some("ARGS"),
    },
    Command {
        name: "restore",
        about: "Restore a container (not supported)",
        flags: &[],
        positionals: &[],
        trailing: Some("ARGS"),
    },
];

/// What one parse found. Flags are stored by their long name.
#[derive(Debug, Default)]
pub struct Matches {
    pub positionals: Vec<String>,
    pub trailing: Vec<String>,
    values: Vec<(&'static str, String)>,
}

impl Matches {
    pub fn flag(&self, long: &str) -> bool {
        self.value(long).is_some_and(|v| v != "false")
    }

    /// The last value given for a flag.
    pub fn value<'a>(&'a self, long: &'a str) -> Option<&'a str> {
        self.all(long).last()
    }

    /// Every value of a repeatable flag, in order.
    pub fn values(&self, long: &str) -> Vec<String> {
        self.all(long).map(String::from).collect()
    }

    fn all<'a>(&'a self, long: &'a str) -> impl Iterator<Item = &'a str> {
        self.values
            .iter()
            .filter(move |(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
    }

    /// A flag's value parsed as `T`; the error names the flag.
    pub fn parsed<T: std::str::FromStr>(&self, long: &str) -> Result<Option<T>, String> {
        self.value(long).map(|s| parse_value(long, s)).transpose()
    }

    /// Every value of a repeatable flag parsed as `T`.
    pub fn parsed_all<T: std::str::FromStr>(&self, long: &str) -> Result<Vec<T>, String> {
        self.all(long).map(|s| parse_value(long, s)).collect()
    }

    /// The first positional (every command with one calls it ID).
    pub fn id(&self) -> String {
        self.positionals.first().cloned().unwrap_or_default()
    }
}

fn parse_value<T: std::str::FromStr>(long: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("invalid value {s:?} for --{long}"))
}

/// This process's arguments after argv[0]; one that is not UTF-8 is an
/// error naming it (std::env::args would abort the process).
pub fn argv() -> Result<Vec<String>, String> {
    std::env::args_os()
        .skip(1)
        .enumerate()
        .map(|(i, a)| {
            a.into_string()
                .map_err(|a| format!("argument {} is not valid UTF-8: {:?}", i + 1, a))
        })
        .collect()
}

/// What the command line asks for.
pub enum Parsed {
    Run {
        global: Matches,
        cmd: &'static Command,
        m: Matches,
    },
    /// Help or version text for stdout; exit 0.
    Print(String),
}

pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut global = Matches::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        match a.as_str() {
            "--help" | "-h" | "help" => {
                let named = args.get(i + 1).and_then(|n| find(n));
                return Ok(Parsed::Print(named.map_or_else(usage, command_usage)));
            }
            "--version" | "-v" => return Ok(Parsed::Print(version())),
            _ if a.starts_with('-') && a.len() > 1 => {
                i = take_flag(args, i, GLOBAL, &[], &mut global)?;
            }
            name => {
                let cmd = find(name)
                    .ok_or_else(|| format!("unknown command {name:?} (husk --help lists them)"))?;
                return Ok(match parse_command(cmd, &args[i + 1..], &mut global)? {
                    Some(m) => Parsed::Run { global, cmd, m },
                    None => Parsed::Print(command_usage(cmd)),
                });
            }
        }
    }
    Err("no command given (husk --help lists them)".into())
}

fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// A command's arguments; None when they ask for its help.
fn parse_command(
    cmd: &Command,
    args: &[String],
    global: &mut Matches,
) -> Result<Option<Matches>, String> {
    let mut m = Matches::default();
    let required = cmd
        .positionals
        .iter()
        .filter(|p| !p.starts_with('['))
        .count();
    let mut i = 0;
    let mut flags_done = false;
    while i < args.len() {
        let a = &args[i];
        // Once the positionals are in, a trailing command starts at its
        // first word that is not one of our flags (`exec ID --tty sh`).
        if cmd.trailing.is_some()
            && m.positionals.len() >= cmd.positionals.len()
            && (flags_done || !is_known_flag(a, cmd.flags))
        {
            if a == "--" && !flags_done {
                i += 1;
            }
            m.trailing.extend(args[i..].iter().cloned());
            break;
        }
        if !flags_done && a == "--" {
            flags_done = true;
            i += 1;
            continue;
        }
        if !flags_done && a.starts_with('-') && a.len() > 1 {
            if a == "--help" || a == "-h" {
                return Ok(None);
            }
            i = take_flag(args, i, cmd.flags, GLOBAL, &mut m)
                .map_err(|e| format!("{}: {e}", cmd.name))?;
            continue;
        }
        if m.positionals.len() >= cmd.positionals.len() {
            return Err(format!("{}: unexpected argument {a:?}", cmd.name));
        }
        m.positionals.push(a.clone());
        i += 1;
    }
    if m.positionals.len() < required {
        return Err(format!(
            "{}: missing {} (usage: husk {})",
            cmd.name,
            cmd.positionals[m.positionals.len()],
            usage_line(cmd)
        ));
    }
    // Global flags given after the command go with the others.
    let globals: Vec<_> = m
        .values
        .iter()
        .filter(|(k, _)| !cmd.flags.iter().any(|f| f.long == *k))
        .cloned()
        .collect();
    m.values
        .retain(|(k, _)| cmd.flags.iter().any(|f| f.long == *k));
    global.values.extend(globals);
    Ok(Some(m))
}

/// Whether `a` is one of `flags` or a global flag (`--x`, `--x=v`, `-x...`).
fn is_known_flag(a: &str, flags: &[Flag]) -> bool {
    let all = || flags.iter().chain(GLOBAL);
    if let Some(long) = a.strip_prefix("--") {
        let name = long.split_once('=').map_or(long, |(n, _)| n);
        return !name.is_empty() && all().any(|f| f.long == name);
    }
    let first = a.strip_prefix('-').and_then(|r| r.chars().next());
    first.is_some_and(|c| all().any(|f| f.short == Some(c)))
}

/// Take the flag at `args[i]` (and its value); returns the next index.
fn take_flag(
    args: &[String],
    i: usize,
    flags: &'static [Flag],
    also: &'static [Flag],
    m: &mut Matches,
) -> Result<usize, String> {
    let a = &args[i];
    let lookup = |pred: &dyn Fn(&Flag) -> bool| flags.iter().chain(also).find(|f| pred(f));
    if let Some(long) = a.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let f = lookup(&|f| f.long == name).ok_or_else(|| format!("unknown flag --{name}"))?;
        return match (f.value, inline) {
            (None, None) => {
                m.values.push((f.long, "true".into()));
                Ok(i + 1)
            }
            (None, Some(v)) if v == "true" || v == "false" => {
                m.values.push((f.long, v.into()));
                Ok(i + 1)
            }
            (None, Some(v)) => Err(format!("--{name} takes no value (got {v:?})")),
            (Some(_), Some(v)) => {
                m.values.push((f.long, v.into()));
                Ok(i + 1)
            }
            (Some(_), None) => {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                m.values.push((f.long, v.clone()));
                Ok(i + 2)
            }
        };
    }
    // -x, -xVALUE, -x VALUE, -abc (booleans).
    let shorts: Vec<char> = a[1..].chars().collect();
    for (k, c) in shorts.iter().enumerate() {
        let f = lookup(&|f| f.short == Some(*c)).ok_or_else(|| format!("unknown flag -{c}"))?;
        if f.value.is_none() {
            m.values.push((f.long, "true".into()));
            continue;
        }
        let rest: String = shorts[k + 1..].iter().collect();
        let rest = rest.strip_prefix('=').unwrap_or(&rest).to_string();
        if !rest.is_empty() {
            m.values.push((f.long, rest));
            return Ok(i + 1);
        }
        let v = args
            .get(i + 1)
            .ok_or_else(|| format!("-{c} needs a value"))?;
        m.values.push((f.long, v.clone()));
        return Ok(i + 2);
    }
    Ok(i + 1)
}

/// The newest runtime-spec version husk implements.
pub const SPEC_VERSION: &str = "1.2.0";

pub fn version() -> String {
    format!(
        "husk version {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        SPEC_VERSION
    )
}

fn flag_lines(out: &mut String, flags: &[Flag]) {
    for f in flags {
        let short = f.short.map_or("    ".to_string(), |c| format!("-{c}, "));
        let long = match f.value {
            Some(v) => format!("--{} {v}", f.long),
            None => format!("--{}", f.long),
        };
        out.push_str(&format!("  {short}{long:<32} {}\n", f.help));
    }
}

fn usage_line(c: &Command) -> String {
    let mut s = format!("{} [OPTIONS]", c.name);
    for p in c.positionals {
        s.push(' ');
        s.push_str(p);
    }
    if let Some(t) = c.trailing {
        s.push_str(&format!(" [{t}...]"));
    }
    s
}

fn usage() -> String {
    let mut s = String::from(
        "husk: a runc-compatible OCI container runtime\n\nUsage: husk [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n\nCommands:\n",
    );
    for c in COMMANDS {
        s.push_str(&format!("  {:<12} {}\n", c.name, c.about));
    }
    s.push_str("\nGlobal options:\n");
    flag_lines(&mut s, GLOBAL);
    s.push_str(
        "  -h, --help                            this help (husk COMMAND --help for a command's)\n",
    );
    s.push_str("  -v, --version                         the version\n");
    s
}

fn command_usage(c: &Command) -> String {
    let mut s = format!("{}\n\nUsage: husk {}\n", c.about, usage_line(c));
    if !c.flags.is_empty() {
        s.push_str("\nOptions:\n");
        flag_lines(&mut s, c.flags);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<(Matches, &'static str, Matches), String> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        match parse(&args)? {
            Parsed::Run { global, cmd, m } => Ok((global, cmd.name, m)),
            Parsed::Print(s) => Err(format!("printed {s}")),
        }
    }

    #[test]
    fn containerd_shim_create_line() {
        let (g, c, m) = p("--root /r --log /l.json --log-format json create --bundle /b --pid-file /p --console-socket /s id1").unwrap();
        assert_eq!(c, "create");
        assert_eq!(g.value("root"), Some("/r"));
        assert_eq!(g.value("log-format"), Some("json"));
        assert_eq!(m.value("bundle"), Some("/b"));
        assert_eq!(m.value("console-socket"), Some("/s"));
        assert_eq!(m.positionals, ["id1"]);
    }

    #[test]
    fn conmon_exec_line_and_trailing_command() {
        let (_, c, m) = p("exec --process /p.json --detach --pid-file /x id2").unwrap();
        assert_eq!(c, "exec");
        assert!(m.flag("detach"));
        assert_eq!(m.positionals, ["id2"]);
        assert!(m.trailing.is_empty());
        let (_, _, m) = p("exec -t -e A=1 -e B=2 -u 1:2 id3 sh -c --help").unwrap();
        assert!(m.flag("tty"));
        assert_eq!(m.values("env"), ["A=1", "B=2"]);
        assert_eq!(m.value("user"), Some("1:2"));
        assert_eq!(m.trailing, ["sh", "-c", "--help"]);
        let (_, _, m) = p("exec id4 -- ls -l").unwrap();
        assert_eq!(m.trailing, ["ls", "-l"]);
        let (_, _, m) = p("exec id5 --cap CAP_KILL -t grep -v --cap x").unwrap();
        assert_eq!(m.values("cap"), ["CAP_KILL"]);
        assert!(m.flag("tty"));
        assert_eq!(m.trailing, ["grep", "-v", "--cap", "x"]);
        let (_, _, m) = p("ps id6 -ef").unwrap();
        assert_eq!(m.trailing, ["-ef"]);
    }

    #[test]
    fn short_forms_equals_and_globals_after_the_command() {
        let (g, _, m) = p("run -db=/b --preserve-fds=2 id5 --debug").unwrap();
        assert!(m.flag("detach"));
        assert_eq!(m.value("bundle"), Some("/b"));
        assert_eq!(m.parsed::<u32>("preserve-fds").unwrap(), Some(2));
        assert!(g.flag("debug"));
        let (_, _, m) = p("delete --force=false id6").unwrap();
        assert!(!m.flag("force"));
        let (_, c, m) = p("kill id7 KILL").unwrap();
        assert_eq!((c, m.positionals.len()), ("kill", 2));
    }

    #[test]
    fn errors_name_the_flag_or_argument() {
        assert!(p("create --bundel /b id").unwrap_err().contains("--bundel"));
        assert!(p("create").unwrap_err().contains("missing ID"));
        assert!(p("start a b")
            .unwrap_err()
            .contains("unexpected argument \"b\""));
        assert!(p("create --bundle")
            .unwrap_err()
            .contains("--bundle needs a value"));
        assert!(p("frobnicate x").unwrap_err().contains("unknown command"));
        let (_, _, m) = p("create --preserve-fds x id").unwrap();
        assert!(m
            .parsed::<u32>("preserve-fds")
            .unwrap_err()
            .contains("--preserve-fds"));
    }

    #[test]
    fn help_and_version_print() {
        for line in [
            &["--help"][..],
            &["create", "--help"],
            &["--version"],
            &["help", "exec"],
        ] {
            let args: Vec<String> = line.iter().map(|s| s.to_string()).collect();
            assert!(matches!(parse(&args), Ok(Parsed::Print(_))), "{line:?}");
        }
    }
}
