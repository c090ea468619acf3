//! The lifecycle: run, create/start, state, list, kill, delete, foreground
//! run's signal handling and exit codes.

mod common;
use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

fn status_of(ctx: &Ctx, id: &str) -> String {
    ctx.state(id)["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn run_prints_greeting_in_new_pid_ns() {
    let ctx = Ctx::new("greet");
    let mut b = ctx.bundle();
    b.sh("echo \"hello from $(hostname) pid $$\"");
    let out = ctx.run_ok(&b);
    assert_eq!(out.trim(), "hello from runc pid 1");
}

#[test]
fn run_propagates_exit_code() {
    let ctx = Ctx::new("exitcode");
    let mut b = ctx.bundle();
    b.sh("exit 3");
    let o = ctx.run(&b);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
}

#[test]
fn create_does_not_run_process_until_start() {
    let ctx = Ctx::new("split");
    let host = ctx.tempdir("shared");
    let cwd = ctx.tempdir("cwd");
    let mut b = ctx.bundle();
    b.bind(&host, "/tmp", false)
        .sh("echo ran > /tmp/marker; exec sleep 1000");
    b.write();
    let id = ctx.id();
    // A relative --pid-file is resolved against husk's cwd.
    let mut c = ctx.cmd();
    c.current_dir(&cwd).args([
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        "init.pid",
        &id,
    ]);
    let o = ctx.output(&mut c);
    assert_ok(&o);

    let marker = host.join("marker");
    assert!(!marker.exists(), "the process ran before start");
    let st = ctx.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0 && pid_alive(pid), "init {pid} not alive");
    let from_file = fs::read_to_string(cwd.join("init.pid")).expect("pid file in husk's cwd");
    assert_eq!(from_file.trim(), pid.to_string());
    // Still not run a moment later.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!marker.exists(), "the process ran before start");

    assert_ok(&ctx.husk(&["start", &id]));
    assert!(
        wait_for(T, || marker.exists()),
        "marker not written after start"
    );
    assert_eq!(status_of(&ctx, &id), "running");

    let o = ctx.husk(&["start", &id]);
    assert_err(&o, "cannot start a container that is running");
}

#[test]
fn delete_running_needs_force() {
    let ctx = Ctx::new("delrun");
    let mut b = ctx.bundle();
    let (id, pid) = ctx.start_sleeper(&mut b);
    let o = ctx.husk(&["delete", &id]);
    assert_err(&o, "running");
    assert!(pid_alive(pid));
    assert_ok(&ctx.husk(&["delete", "--force", &id]));
    assert!(
        wait_for(T, || !pid_alive(pid)),
        "init {pid} survived delete --force"
    );
    assert!(!ctx.root.join(&id).exists(), "state dir left behind");
    assert!(!ctx.husk(&["state", &id]).status.success());
}

#[test]
fn delete_created_kills_init_and_runs_poststop() {
    let ctx = Ctx::new("delcreated");
    let log = ctx.tempdir("log").join("hooks");
    let mut b = ctx.bundle();
    b.args(&["true"]).hook(
        "poststop",
        // Reads its stdin: see the SIGPIPE test in tests/hooks.rs.
        host_sh_hook(&format!(
            "cat > /dev/null; echo poststop >> {}",
            log.display()
        )),
    );
    let id = ctx.create(&b);
    let pid = ctx.pid(&id);
    assert!(pid_alive(pid));
    let o = ctx.husk(&["delete", &id]);
    assert_ok(&o);
    assert!(
        wait_for(T, || !pid_alive(pid)),
        "blocked init {pid} survived delete"
    );
    assert_eq!(fs::read_to_string(&log).unwrap_or_default(), "poststop\n");
    assert!(ctx.root_entries().is_empty(), "{:?}", ctx.root_entries());
}

/// A container that appends the name of each signal it gets to /tmp/sigs.
fn trapper(ctx: &Ctx, host: &Path) -> (String, i32) {
    let mut b = ctx.bundle();
    b.bind(host, "/tmp", false).sh(
        "for s in TERM USR1 USR2 HUP; do trap \"echo $s >> /tmp/sigs\" $s; done; \
         echo ready > /tmp/ready; while :; do sleep 0.05; done",
    );
    let id = ctx.create(&b);
    assert_ok(&ctx.husk(&["start", &id]));
    assert!(
        wait_for(T, || host.join("ready").exists()),
        "trapper not ready"
    );
    let pid = ctx.pid(&id);
    (id, pid)
}

#[test]
fn kill_default_name_and_number_forms() {
    let ctx = Ctx::new("killforms");
    let host = ctx.tempdir("sig");
    let (id, _) = trapper(&ctx, &host);
    let sigs = host.join("sigs");
    let mut want = String::new();
    for (args, name) in [
        (vec![], "TERM"),
        (vec!["USR1"], "USR1"),
        (vec!["SIGUSR2"], "USR2"),
        (vec!["1"], "HUP"),
    ] {
        let mut a = vec!["kill", id.as_str()];
        a.extend(args.iter());
        assert_ok(&ctx.husk(&a));
        want.push_str(name);
        want.push('\n');
        assert!(
            wait_for(T, || fs::read_to_string(&sigs).unwrap_or_default() == want),
            "after `husk {a:?}` expected {want:?}, got {:?}",
            fs::read_to_string(&sigs).unwrap_or_default()
        );
    }
}

#[test]
fn kill_unknown_signal_is_an_error() {
    let ctx = Ctx::new("killbad");
    let mut b = ctx.bundle();
    let (id, pid) = ctx.start_sleeper(&mut b);
    for s in ["SIGFOO", "NOPE"] {
        let o = ctx.husk(&["kill", &id, s]);
        assert_err(&o, "unknown signal");
    }
    assert_err(&ctx.husk(&["kill", &id, "99"]), "99");
    assert!(pid_alive(pid));
    assert_eq!(status_of(&ctx, &id), "running");
}

#[test]
fn dead_init_is_stopped_with_pid_0() {
    let ctx = Ctx::new("stopped");
    let mut b = ctx.bundle();
    b.sh("true");
    let id = ctx.create(&b);
    assert_ok(&ctx.husk(&["start", &id]));
    assert!(
        wait_for(T, || status_of(&ctx, &id) == "stopped"),
        "status: {}",
        ctx.state(&id)
    );
    assert_eq!(ctx.state(&id)["pid"], json!(0));
    // kill on a stopped container fails and names the state.
    let o = ctx.husk(&["kill", &id, "KILL"]);
    assert_err(&o, "stopped");
    // delete without --force works on a stopped container.
    assert_ok(&ctx.husk(&["delete", &id]));
    assert!(ctx.root_entries().is_empty());
}

/// Spawn `husk run` in the foreground (stdio to null) and wait for the
/// container to report ready through `host/ready`.
fn spawn_run(ctx: &Ctx, b: &Bundle, host: &Path) -> (String, std::process::Child) {
    b.write();
    let id = ctx.id();
    let child = ctx
        .cmd()
        .args(["run", "--bundle", b.path(), &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(T, || host.join("ready").exists()),
        "container not ready"
    );
    (id, child)
}

fn wait_child(child: &mut std::process::Child) -> Option<i32> {
    let mut code = None;
    let done = wait_for(T, || match child.try_wait() {
        Ok(Some(s)) => {
            code = s.code();
            true
        }
        _ => false,
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("husk run did not exit");
    }
    code
}

#[test]
fn foreground_run_forwards_sigterm() {
    let ctx = Ctx::new("fwdterm");
    let host = ctx.tempdir("h");
    let mut b = ctx.bundle();
    b.bind(&host, "/tmp", false)
        .sh("trap 'exit 7' TERM; echo > /tmp/ready; while :; do sleep 0.05; done");
    let (_id, mut child) = spawn_run(&ctx, &b, &host);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait_child(&mut child), Some(7));
}

#[test]
fn foreground_run_exits_128_plus_signal() {
    let ctx = Ctx::new("fwdkill");
    let host = ctx.tempdir("h");
    let mut b = ctx.bundle();
    b.bind(&host, "/tmp", false)
        .sh("echo > /tmp/ready; exec sleep 1000");
    let (id, mut child) = spawn_run(&ctx, &b, &host);
    assert_ok(&ctx.husk(&["kill", &id, "KILL"]));
    assert_eq!(wait_child(&mut child), Some(137));
}

#[test]
fn run_detach_returns_at_once() {
    let ctx = Ctx::new("detach");
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    b.write();
    let id = ctx.id();
    let t0 = std::time::Instant::now();
    assert_ok(&ctx.husk(&["run", "-d", "--bundle", b.path(), &id]));
    assert!(t0.elapsed() < Duration::from_secs(4));
    assert_eq!(status_of(&ctx, &id), "running");
}

#[test]
fn run_keep_keeps_stopped_container() {
    let ctx = Ctx::new("keep");
    let mut b = ctx.bundle();
    b.sh("true");
    b.write();
    let kept = ctx.id();
    assert_ok(&ctx.husk(&["run", "--keep", "--bundle", b.path(), &kept]));
    let gone = ctx.id();
    assert_ok(&ctx.husk(&["run", "--bundle", b.path(), &gone]));
    let o = ctx.husk(&["list", "-q"]);
    assert_ok(&o);
    let ids: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(ids, vec![kept.clone()], "{}", show(&o));
    assert_eq!(status_of(&ctx, &kept), "stopped");
}

#[test]
fn state_json_shape() {
    let ctx = Ctx::new("stateshape");
    let mut b = ctx.bundle();
    b.spec["annotations"] = json!({"org.example": "x"});
    let (id, pid) = ctx.start_sleeper(&mut b);
    let st = ctx.state(&id);
    for k in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(k).is_some(), "state lacks {k}: {st}");
    }
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["pid"], json!(pid));
    assert_eq!(st["status"], "running");
    assert_eq!(st["bundle"], json!(b.path()));
    assert_eq!(st["rootfs"], json!(rootfs().to_str().unwrap()));
    assert!(st["owner"].is_string(), "{st}");
    assert!(
        st["created"].as_str().is_some_and(|c| c.contains('T')),
        "{st}"
    );
}

#[test]
fn list_table_json_and_quiet() {
    let ctx = Ctx::new("list");
    let mut b = ctx.bundle();
    let (id, pid) = ctx.start_sleeper(&mut b);

    let o = ctx.husk(&["list"]);
    assert_ok(&o);
    let out = stdout(&o);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{out}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert!(row.len() >= 5, "{out}");
    assert_eq!(
        row[..4],
        [id.as_str(), &pid.to_string(), "running", b.path()],
        "{out}"
    );

    let o = ctx.husk(&["list", "--format", "json"]);
    assert_ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().expect("a JSON array");
    assert_eq!(arr.len(), 1, "{v}");
    for k in [
        "id", "pid", "status", "bundle", "rootfs", "created", "owner",
    ] {
        assert!(arr[0].get(k).is_some(), "list entry lacks {k}: {v}");
    }
    assert_eq!(arr[0]["id"], json!(id));
    assert_eq!(arr[0]["pid"], json!(pid));
    assert_eq!(arr[0]["status"], "running");

    let o = ctx.husk(&["list", "-q"]);
    assert_eq!(stdout(&o), format!("{id}\n"));
}

#[test]
fn start_of_a_process_that_exits_at_once_succeeds() {
    let ctx = Ctx::new("race");
    let mut b = ctx.bundle();
    b.args(&["true"]);
    for _ in 0..20 {
        let o = ctx.run(&b);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }
    b.sh_raw("exit 3");
    for _ in 0..20 {
        let o = ctx.run(&b);
        assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    }
}

// ---------------------------------------------------------------- NOTIFY_SOCKET

/// A created container whose process runs `script` with NOTIFY_SOCKET
/// (podman --sdnotify=container) pointing at `<out>/host.sock`, `/tmp`
/// bound to `out`. Returns the id and the host's socket, bound.
fn notify_create(
    ctx: &Ctx,
    out: &Path,
    script: &str,
) -> (String, std::os::unix::net::UnixDatagram) {
    let host_path = out.join("host.sock");
    let host = std::os::unix::net::UnixDatagram::bind(&host_path).unwrap();
    let mut b = ctx.bundle();
    b.bind(out, "/tmp", false).sh(script);
    b.write();
    let id = ctx.id();
    let o = ctx.output(ctx.cmd().env("NOTIFY_SOCKET", &host_path).args([
        "create",
        "--bundle",
        b.path(),
        &id,
    ]));
    assert_ok(&o);
    (id, host)
}

/// `husk start` waits for the container's READY=1 without holding the
/// container's lock (`state` answers meanwhile), then passes it on to the
/// host's NOTIFY_SOCKET with the init's host pid.
#[test]
fn notify_socket_ready_is_relayed_and_the_lock_is_free_meanwhile() {
    use std::os::unix::net::UnixDatagram;
    let ctx = Ctx::new("notify");
    let out = ctx.tempdir("notify");
    let host_path = out.join("host.sock");
    let (id, host) = notify_create(
        &ctx,
        &out,
        "echo \"$NOTIFY_SOCKET\" > /tmp/env; ls /run/notify > /tmp/ls; sleep 1000",
    );
    host.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut start = ctx
        .cmd()
        .env("NOTIFY_SOCKET", &host_path)
        .args(["start", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || fs::read_to_string(
            out.join("ls")
        )
        .is_ok_and(|l| l.contains("notify.sock"))),
        "the container never saw /run/notify/notify.sock"
    );
    assert_eq!(
        fs::read_to_string(out.join("env")).unwrap().trim(),
        "/run/notify/notify.sock"
    );
    // The lock is free while start waits: state answers (bounded in time).
    let o = ctx.output(
        std::process::Command::new("timeout")
            .arg("10")
            .arg(husk_bin())
            .arg("--root")
            .arg(&ctx.root)
            .args(["state", &id]),
    );
    assert_ok(&o);
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert!(
        start.try_wait().unwrap().is_none(),
        "start did not wait for READY=1"
    );
    // What the container's sd_notify would send, into the same socket.
    let inside = ctx.root.join(&id).join("notify/notify.sock");
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"STATUS=starting\nREADY=1\n", &inside)
        .unwrap();
    let mut buf = [0u8; 256];
    let n = host
        .recv(&mut buf)
        .expect("nothing reached the host's NOTIFY_SOCKET");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("READY=1\nMAINPID={pid}\n")
    );
    assert!(start.wait().unwrap().success());
}

/// A container that exits before READY=1 fails `start` at once (the init's
/// pidfd, not a timeout), with an error that says so.
#[test]
fn notify_socket_exit_before_ready_fails_start() {
    let ctx = Ctx::new("notifyexit");
    let out = ctx.tempdir("notify");
    let host_path = out.join("host.sock");
    let (id, _host) = notify_create(&ctx, &out, "exit 0");
    let o = ctx.output(
        ctx.cmd()
            .env("NOTIFY_SOCKET", &host_path)
            .args(["start", &id]),
    );
    assert_err(&o, "exited before it reported READY=1");
}
