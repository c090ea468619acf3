//! process.*: capabilities, no_new_privs, rlimits, user, umask, env, cwd,
//! HOME; and `exec` with its flags.

mod common;
use common::*;
use serde_json::json;
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// The value of `Key:` in a /proc/<pid>/status dump.
fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in\n{status}"))
        .trim()
        .to_string()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap()
}

#[test]
fn capabilities_match_spec() {
    let ctx = Ctx::new("caps");
    let mut b = ctx.bundle();
    b.caps(&["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"])
        .sh("cat /proc/self/status");
    let st = ctx.run_ok(&b);
    let want = 1u64 | 1 << 5 | 1 << 21;
    for k in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(hex(&status_field(&st, k)), want, "{k}\n{st}");
    }
    assert_eq!(hex(&status_field(&st, "CapInh")), 0, "{st}");

    // Inheritable is set only when the spec asks for it.
    b.spec["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    let st = ctx.run_ok(&b);
    assert_eq!(hex(&status_field(&st, "CapInh")), 1 << 5, "{st}");
}

#[test]
fn default_caps_are_runcs_three() {
    let ctx = Ctx::new("defcaps");
    let mut b = ctx.bundle();
    b.sh("cat /proc/self/status");
    let st = ctx.run_ok(&b);
    // CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE
    let want = 1u64 << 29 | 1 << 5 | 1 << 10;
    for k in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(hex(&status_field(&st, k)), want, "{k}\n{st}");
    }
}

#[test]
fn no_new_privileges() {
    let ctx = Ctx::new("nnp");
    let mut b = ctx.bundle();
    b.sh("cat /proc/self/status");
    b.spec["process"]["noNewPrivileges"] = json!(true);
    assert_eq!(status_field(&ctx.run_ok(&b), "NoNewPrivs"), "1");
    b.spec["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(status_field(&ctx.run_ok(&b), "NoNewPrivs"), "0");
}

#[test]
fn rlimit_nofile_applied() {
    let ctx = Ctx::new("rlimit");
    let mut b = ctx.bundle();
    b.sh("ulimit -n; ulimit -H -n");
    assert_eq!(ctx.run_ok(&b), "1024\n1024\n");
    b.rlimits(json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 800}]));
    assert_eq!(ctx.run_ok(&b), "512\n800\n");
}

#[test]
fn rlimit_above_host_hard_limit_fails_cleanly() {
    let ctx = Ctx::new("rlimithigh");
    let mounts = host_mounts();
    let mut b = ctx.bundle();
    b.sh("true")
        .rlimits(json!([{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]));
    b.write();
    let id = ctx.id();
    let o = ctx.husk(&["create", "--bundle", b.path(), &id]);
    assert_err(&o, "RLIMIT_NOFILE");
    assert!(ctx.root_entries().is_empty(), "{:?}", ctx.root_entries());
    assert!(
        wait_for(T, || procs_mentioning(b.path()).is_empty()),
        "{:?}",
        procs_mentioning(b.path())
    );
    assert_eq!(host_mounts(), mounts);
}

#[test]
fn user_uid_gid_additional_gids() {
    let ctx = Ctx::new("user");
    let mut b = ctx.bundle();
    b.user(json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20]}))
        .sh("id -u; id -g; id -G");
    let out = ctx.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1001", "{out}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(groups.contains(&"10") && groups.contains(&"20"), "{out}");
}

#[test]
fn umask_env_cwd() {
    let ctx = Ctx::new("umask");
    let mut b = ctx.bundle();
    b.user(json!({"uid": 0, "gid": 0, "umask": 0o027}))
        .env("FOO=bar baz")
        .sh("umask; echo \"$FOO\"; pwd");
    b.spec["process"]["cwd"] = json!("/tmp");
    assert_eq!(ctx.run_ok(&b), "0027\nbar baz\n/tmp\n");
}

#[test]
fn home_from_passwd_when_unset() {
    let ctx = Ctx::new("home");
    let mut b = ctx.bundle();
    b.sh("echo $HOME");
    assert_eq!(ctx.run_ok(&b), "/root\n");
    b.env("HOME=/custom");
    assert_eq!(ctx.run_ok(&b), "/custom\n");
}

#[test]
fn home_from_passwd_for_nonroot_user() {
    let ctx = Ctx::new("homenobody");
    let mut b = ctx.bundle();
    b.user(json!({"uid": 65534, "gid": 65534}))
        .sh("echo $HOME; id -u");
    assert_eq!(ctx.run_ok(&b), "/nonexistent\n65534\n");
}

// ---------------------------------------------------------------- exec

fn sleeper(ctx: &Ctx) -> (String, i32) {
    let mut b = ctx.bundle();
    ctx.start_sleeper(&mut b)
}

#[test]
fn exec_stdout_and_exit_code() {
    let ctx = Ctx::new("exec");
    let (id, _) = sleeper(&ctx);
    let o = ctx.husk(&["exec", &id, "sh", "-c", "echo hi from $$; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("hi from ") && out.trim() != "hi from 1",
        "{out}"
    );
}

#[test]
fn exec_env_cwd_user() {
    let ctx = Ctx::new("execflags");
    let (id, _) = sleeper(&ctx);
    let o = ctx.husk(&[
        "exec",
        "--env",
        "FOO=bar",
        "-e",
        "X=1",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $FOO $X; pwd",
    ]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "bar 1\n/tmp\n");
    let o = ctx.husk(&["exec", "-u", "1000:1000", &id, "id"]);
    assert_ok(&o);
    assert!(stdout(&o).starts_with("uid=1000 gid=1000"), "{}", show(&o));
}

#[test]
fn exec_cap_adds_capability() {
    let ctx = Ctx::new("execcap");
    let (id, _) = sleeper(&ctx);
    let o = ctx.husk(&["exec", &id, "cat", "/proc/self/status"]);
    assert_ok(&o);
    assert_eq!(hex(&status_field(&stdout(&o), "CapEff")) & 1 << 21, 0);
    let o = ctx.husk(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    assert_ok(&o);
    assert_ne!(
        hex(&status_field(&stdout(&o), "CapEff")) & 1 << 21,
        0,
        "{}",
        show(&o)
    );
}

#[test]
fn exec_process_file() {
    let ctx = Ctx::new("execproc");
    let (id, _) = sleeper(&ctx);
    let f = ctx.tempdir("p").join("process.json");
    let p = json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "echo from-file $FOO; pwd"],
        "env": ["PATH=/bin", "FOO=yes"],
        "cwd": "/tmp"
    });
    fs::write(&f, p.to_string()).unwrap();
    let o = ctx.husk(&["exec", "--process", f.to_str().unwrap(), &id]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "from-file yes\n/tmp\n");
}

#[test]
fn exec_into_stopped_container_fails() {
    let ctx = Ctx::new("execstopped");
    let mut b = ctx.bundle();
    b.sh("true");
    let id = ctx.create(&b);
    assert_ok(&ctx.husk(&["start", &id]));
    assert!(wait_for(T, || ctx.state(&id)["status"] == "stopped"));
    let o = ctx.husk(&["exec", &id, "true"]);
    assert_err(&o, "stopped");
}

#[test]
fn exec_detach_pid_file_same_namespaces_and_cgroup() {
    let ctx = Ctx::new("execdetach");
    let (id, init) = sleeper(&ctx);
    let pf = ctx.tempdir("pf").join("exec.pid");
    let o = ctx.husk(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    assert_ok(&o);
    let pid: i32 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert!(pid_alive(pid), "exec'd pid {pid} not alive");
    assert_ne!(pid, init);
    let (p, i) = (pid.to_string(), init.to_string());
    for ns in ["pid", "mnt", "net", "ipc", "uts"] {
        assert_eq!(ns_inode(&p, ns), ns_inode(&i, ns), "{ns} namespace differs");
    }
    let cg = |pid: &str| fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg(&p), cg(&i));

    // And from inside: the exec'd shell sees the init's namespaces.
    let o = ctx.husk(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for n in pid mnt net; do readlink /proc/self/ns/$n; done",
    ]);
    assert_ok(&o);
    let want: Vec<String> = ["pid", "mnt", "net"]
        .iter()
        .map(|n| ns_inode(&i, n))
        .collect();
    let got: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(got, want);
}

/// process.oomScoreAdj: set before the process runs, also for a container
/// with its own user namespace (the score is written before that namespace
/// exists); lowered where husk has CAP_SYS_RESOURCE, else a clear error.
#[test]
fn oom_score_adj_is_set() {
    let ctx = Ctx::new("oomadj");
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = u64::from_str_radix(&status_field(&own, "CapEff"), 16).unwrap();
    let own_adj: i32 = fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if cap_eff & (1 << 24) == 0 {
        let mut b = ctx.bundle();
        b.spec["process"]["oomScoreAdj"] = json!(own_adj - 1);
        b.sh("true");
        assert_err(&ctx.run(&b), "lowering it needs CAP_SYS_RESOURCE");
    }
    let lower = if cap_eff & (1 << 24) != 0 {
        Some(-500)
    } else {
        None
    };
    for (adj, userns) in [(500, false), (300, true)]
        .into_iter()
        .chain(lower.map(|a| (a, false)))
    {
        let mut b = ctx.bundle();
        b.spec["process"]["oomScoreAdj"] = json!(adj);
        if userns {
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            b.add_namespace("user")
                .linux("uidMappings", map.clone())
                .linux("gidMappings", map);
        }
        b.sh("cat /proc/self/oom_score_adj");
        assert_eq!(ctx.run_ok(&b).trim(), adj.to_string(), "userns: {userns}");
    }
}
