//! The operations on a container, one lifecycle for every sandbox: each
//! checks the transition against the derived status, then acts.

use super::hooks;
use super::state::State;
use super::status::{Op, Status};
use super::store::{ContainerDir, Store};
use crate::cgroups::{self, Manager};
use crate::sandbox::linux::{seccomp, spawn};
use crate::sandbox::vm::{self, settings::VmSettings};
use crate::spec::Bundle;
use crate::sys::proc::PidFd;
use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::Hook;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct CreateOpts {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    pub pty: Option<OwnedFd>,
}

fn hook_list(
    state: &State,
    f: impl Fn(&oci_spec::runtime::Hooks) -> &Option<Vec<Hook>>,
) -> Vec<Hook> {
    state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| f(h).clone())
        .unwrap_or_default()
}

/// Create: a validated bundle in, a container waiting for `start` out.
/// On any failure nothing is left behind.
pub fn create(store: &Store, id: &str, bundle: Bundle, o: &CreateOpts) -> Result<Created> {
    let linux = bundle.spec.linux().as_ref();
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let paths = cgroups::plan(cgroups_path.as_deref(), id)?;
    let resources = with_default_devices(&bundle.spec);
    for w in cgroups::validate(&resources, &paths)? {
        log::warn!("{w}");
    }
    let filter = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile_for_container)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let vm = vm::settings::from_spec(&bundle.spec, &vm::settings::Host::current())
        .map_err(|e| anyhow!(e))?;
    let dir = store.create(id)?;
    let mut mgr = Manager::new(paths);
    let made = mgr.create().map_err(anyhow::Error::from).and_then(|_| {
        mgr.apply(&resources)?;
        create_in(&dir, id, bundle, o, &mgr, filter.as_ref(), vm.as_ref())
    });
    match made {
        Ok((state, pty)) => Ok(Created { dir, state, pty }),
        Err(e) => {
            let _ = mgr.kill_all(libc::SIGKILL);
            let _ = mgr.destroy();
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// The cgroup manager of a container, from its state.
pub fn manager(state: &State) -> Option<Manager> {
    let v = state.cgroup.clone()?;
    serde_json::from_value::<cgroups::CgroupPaths>(v)
        .ok()
        .map(Manager::new)
}

fn create_in(
    dir: &ContainerDir,
    id: &str,
    bundle: Bundle,
    o: &CreateOpts,
    mgr: &Manager,
    filter: Option<&seccomp::Filter>,
    vm: Option<&VmSettings>,
) -> Result<(State, Option<OwnedFd>)> {
    let mut bundle = bundle;
    if super::notify::host_socket().is_some() {
        super::notify::setup_spec(&mut bundle.spec, &dir.path)?;
    }
    let mut state = State {
        oci_version: bundle.spec.version().clone(),
        id: id.to_string(),
        pid: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: String::new(),
        owner: owner_name(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        init_start_time: 0,
        sandbox: if vm.is_some() { "vm" } else { "linux" }.into(),
        config: bundle.spec.clone(),
        cgroup: Some(serde_json::to_value(mgr.paths())?),
    };
    // A microVM: the initramfs now, the VMM in place of the init later
    // (seccomp and the rest of the process are the agent's, in the guest).
    let prepared = vm
        .map(|s| vm::host::prepare(s, &bundle, &dir.path))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let vmm = prepared
        .as_ref()
        .map(|p| move |i: &crate::sandbox::linux::init::Init| vm::container::main(&p.plan, i));
    let opts = spawn::CreateOpts {
        bundle: prepared.as_ref().map_or(&bundle, |p| &p.bundle),
        state_dir: &dir.path,
        lock_fd: dir.lock_fd(),
        console_socket: o.console_socket.as_deref(),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds,
        cgroup: Some(mgr),
        seccomp: filter.filter(|_| vm.is_none()),
        vmm: vmm.as_ref().map(|f| f as _),
    };
    let st = &mut state;
    let mut runtime_hooks = |pid: i32| -> std::result::Result<String, String> {
        st.pid = pid;
        let json = st.hook_json(Status::Creating);
        #[allow(deprecated)]
        let pre = hook_list(st, |h| h.prestart());
        hooks::run("prestart", &pre, &json).map_err(|e| e.to_string())?;
        hooks::run(
            "createRuntime",
            &hook_list(st, |h| h.create_runtime()),
            &json,
        )
        .map_err(|e| e.to_string())?;
        Ok(json)
    };
    let spawned = spawn::create(&opts, &mut runtime_hooks).map_err(|e| anyhow!(e))?;
    for w in &spawned.warnings {
        log::warn!("{w}");
    }
    state.pid = spawned.pid;
    state.init_start_time = spawned.start_time;
    state.created = crate::sys::time::now();
    let saved = dir.save(&state).and_then(|_| match &o.pid_file {
        Some(p) => write_pid_file(p, spawned.pid).map_err(Into::into),
        None => Ok(()),
    });
    if let Err(e) = saved {
        kill_and_wait(&state);
        return Err(e.into());
    }
    Ok((state, spawned.pty))
}

/// --pid-file: atomic, host pid, relative to our cwd.
pub fn write_pid_file(p: &Path, pid: i32) -> std::result::Result<(), crate::sys::SysError> {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    crate::sys::fs::write_atomic(&abs, pid.to_string().as_bytes())
}

/// Our user's name from /etc/passwd (read directly: no NSS on this path).
fn owner_name() -> String {
    let uid = nix::unistd::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|pw| {
            pw.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Load a container and its derived status.
pub fn load(store: &Store, id: &str) -> Result<(ContainerDir, State, Status)> {
    let dir = store.open(id)?;
    let state = dir
        .load()?
        .ok_or_else(|| anyhow!("container {id:?} is still being created"))?;
    let status = dir.status(&state);
    Ok((dir, state, status))
}

/// Start: release the init waiting on the exec fifo; then, without the
/// container's lock, relay its READY=1 and run the poststart hooks.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let (dir, state, status) = load(store, id)?;
    status.check(Op::Start)?;
    let started = start_created(&dir, &state)?;
    drop(dir);
    started.finish(&state)
}

/// A container whose init was released; `finish` is what remains of the
/// start. It runs without the container's lock: a poststart hook may ask
/// `husk state`, and podman may stop a container that never gets ready.
pub struct Started {
    notify: Option<(String, std::os::unix::net::UnixDatagram)>,
}

impl Started {
    /// Wait for the container's READY=1 and pass it on (with
    /// NOTIFY_SOCKET), then run the poststart hooks.
    pub fn finish(self, state: &State) -> Result<()> {
        if let Some((host, sock)) = self.notify {
            super::notify::relay(&sock, &host, state.pid, state.init_start_time)?;
        }
        let json = state.hook_json(Status::Running);
        if let Err(e) = hooks::run("poststart", &hook_list(state, |h| h.poststart()), &json) {
            log::warn!("{e}");
        }
        Ok(())
    }
}

/// Release a created container's init (listening first for its READY=1
/// when there is a NOTIFY_SOCKET to relay to).
pub fn start_created(dir: &ContainerDir, state: &State) -> Result<Started> {
    let notify = match super::notify::host_socket() {
        Some(host) if dir.path.join("notify").is_dir() => {
            Some((host, super::notify::listen(&dir.path)?))
        }
        _ => None,
    };
    release(dir, state)?;
    Ok(Started { notify })
}

/// Open the fifo for reading (the init is blocked opening it for writing),
/// read its byte, remove it: from then on the container is running.
pub fn release(dir: &ContainerDir, state: &State) -> Result<()> {
    // The pidfd first: once the fifo is open the init may exec and exit at
    // once, and a byte read then still means it started.
    let pidfd = PidFd::open(state.pid, state.init_start_time)?
        .ok_or_else(|| anyhow!("container init is gone"))?;
    let fifo = dir.fifo();
    let fd = crate::sys::io::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK,
    )?;
    // Wait for the byte, or for the init to die first.
    let fds = [(fd.as_raw_fd(), libc::POLLIN), (pidfd.raw(), libc::POLLIN)];
    crate::sys::io::poll(&fds, -1)?;
    let mut b = [0u8; 1];
    let n = nix::unistd::read(fd.as_raw_fd(), &mut b).unwrap_or(0);
    if n != 1 {
        bail!("container init died before start");
    }
    let _ = std::fs::remove_file(&fifo);
    Ok(())
}

/// Send `sig` to the init (or, with `all`, to every process of the
/// container).
pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<()> {
    let (dir, state, status) = load(store, id)?;
    drop(dir);
    status.check(Op::Kill)?;
    // The init's pidfd first: with --all it may be gone once signalled.
    let p = PidFd::open(state.pid, state.init_start_time)?
        .ok_or_else(|| anyhow!("container {id:?} is not running"))?;
    if all {
        match manager(&state) {
            // Freezes, signals every process, thaws: a fork cannot escape.
            Some(m) => m.kill_all(sig)?,
            None => {
                for pid in container_pids(&state) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::try_from(sig).ok(),
                    );
                }
            }
        }
    }
    p.signal(sig)?;
    Ok(())
}

/// Every process of the container: its cgroup's, or (no cgroup) those in
/// the init's pid namespace when it has its own, else just the init.
pub fn container_pids(state: &State) -> Vec<i32> {
    if let Some(pids) = manager(state).and_then(|m| m.pids().ok()) {
        return pids;
    }
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let own = ns(state.pid);
    let mine = ns(std::process::id() as i32);
    if own.is_none() || own == mine {
        return vec![state.pid];
    }
    let mut out: Vec<i32> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.retain(|&p| ns(p) == own);
    out.sort();
    out
}

fn kill_and_wait(state: &State) {
    let mgr = manager(state);
    if let Some(m) = &mgr {
        let _ = m.kill_all(libc::SIGKILL);
        // A paused container's processes die only once thawed.
        let _ = m.thaw();
    }
    if let Ok(Some(p)) = PidFd::open(state.pid, state.init_start_time) {
        for pid in container_pids(state) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = p.signal(libc::SIGKILL);
        p.wait_exit(10_000);
    }
}

/// Delete: a stopped or created container; anything with --force.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let dir = match store.open(id) {
        Ok(d) => d,
        Err(super::store::Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(state) = dir.load()? else {
        if force {
            dir.remove()?;
            return Ok(());
        }
        bail!("container {id:?} is still being created");
    };
    let status = dir.status(&state);
    status.check(if force { Op::ForceDelete } else { Op::Delete })?;
    destroy(dir, &state)
}

/// Kill what is left, run poststop hooks, remove everything.
pub fn destroy(dir: ContainerDir, state: &State) -> Result<()> {
    kill_and_wait(state);
    let json = state.hook_json(Status::Stopped);
    if let Err(e) = hooks::run("poststop", &hook_list(state, |h| h.poststop()), &json) {
        log::warn!("{e}");
    }
    if let Some(m) = manager(state) {
        m.destroy()?;
    }
    dir.remove()?;
    Ok(())
}

/// Pause (freeze) or resume (thaw) every process of the container.
pub fn pause(store: &Store, id: &str, pause: bool) -> Result<()> {
    let (_dir, state, status) = load(store, id)?;
    status.check(if pause { Op::Pause } else { Op::Resume })?;
    let m = manager(&state).ok_or_else(|| anyhow!("container {id:?} has no cgroup to freeze"))?;
    if pause {
        m.freeze()?;
    } else {
        m.thaw()?;
    }
    Ok(())
}

/// Change the limits of a live container; the new resources are kept in
/// its state.
pub fn update(store: &Store, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let (dir, mut state, status) = load(store, id)?;
    status.check(Op::Update)?;
    let m = manager(&state).ok_or_else(|| anyhow!("container {id:?} has no cgroup"))?;
    for w in cgroups::validate(r, m.paths())? {
        log::warn!("{w}");
    }
    m.apply(r)?;
    if let Some(linux) = state.config.linux_mut() {
        linux.set_resources(Some(merge_resources(
            linux.resources().clone().unwrap_or_default(),
            r,
        )));
    }
    dir.save(&state)?;
    Ok(())
}

/// Fields set in `new` replace those of `old` (as runc's update merges).
fn merge_resources(
    old: oci_spec::runtime::LinuxResources,
    new: &oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    let mut o = serde_json::to_value(old).unwrap_or_default();
    let n = serde_json::to_value(new).unwrap_or_default();
    merge_json(&mut o, &n);
    serde_json::from_value(o).unwrap_or_else(|_| new.clone())
}

fn merge_json(a: &mut serde_json::Value, b: &serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge_json(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) if !b.is_null() => *a = b.clone(),
        _ => {}
    }
}

/// The device cgroup rules: the spec's own, then (as runc) the devices
/// every container gets — the defaults /dev holds, the pty devices, tun —
/// and each `linux.devices` entry.
fn with_default_devices(spec: &oci_spec::runtime::Spec) -> oci_spec::runtime::LinuxResources {
    let linux = spec.linux().as_ref();
    let mut r = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    let rule = |t: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        let v = serde_json::json!({"allow": true, "type": t, "major": major, "minor": minor, "access": access});
        serde_json::from_value::<oci_spec::runtime::LinuxDeviceCgroup>(v).expect("valid rule")
    };
    rules.push(rule("c", None, None, "m"));
    rules.push(rule("b", None, None, "m"));
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(8)),
        (1, Some(7)),
        (5, Some(0)),
        (1, Some(5)),
        (1, Some(9)),
        (5, Some(1)),
        (136, None),
        (5, Some(2)),
        (10, Some(200)),
    ] {
        rules.push(rule("c", Some(major), minor, "rwm"));
    }
    for d in linux.and_then(|l| l.devices().clone()).unwrap_or_default() {
        let t = match d.typ() {
            oci_spec::runtime::LinuxDeviceType::B => "b",
            _ => "c",
        };
        rules.push(rule(t, Some(d.major()), Some(d.minor()), "rwm"));
    }
    r.set_devices(Some(rules));
    r
}
