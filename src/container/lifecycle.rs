//! The operations on a container, one lifecycle for every sandbox: each
//! checks the transition against the derived status, then acts.

use super::hooks;
use super::state::State;
use super::status::{Op, Status};
use super::store::{ContainerDir, Store};
use crate::sandbox::linux::spawn;
use crate::spec::Bundle;
use crate::sys::proc::PidFd;
use anyhow::{anyhow, bail, Context, Result};
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
    let dir = store.create(id)?;
    match create_in(&dir, id, bundle, o) {
        Ok((state, pty)) => Ok(Created { dir, state, pty }),
        Err(e) => {
            let _ = dir.remove();
            Err(e)
        }
    }
}

fn create_in(
    dir: &ContainerDir,
    id: &str,
    bundle: Bundle,
    o: &CreateOpts,
) -> Result<(State, Option<OwnedFd>)> {
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
        sandbox: "linux".into(),
        config: bundle.spec.clone(),
        cgroup: None,
    };
    let opts = spawn::CreateOpts {
        bundle: &bundle,
        state_dir: &dir.path,
        lock_fd: dir.lock_fd(),
        console_socket: o.console_socket.as_deref(),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds,
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

fn owner_name() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
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

/// Start: release the init waiting on the exec fifo, then poststart hooks.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let (dir, state, status) = load(store, id)?;
    status.check(Op::Start)?;
    start_created(&dir, &state)
}

/// Start a container known to be created (run's own create, or `start`).
pub fn start_created(dir: &ContainerDir, state: &State) -> Result<()> {
    release(dir, state)?;
    let json = state.hook_json(Status::Running);
    if let Err(e) = hooks::run("poststart", &hook_list(&state, |h| h.poststart()), &json) {
        log::warn!("{e}");
    }
    Ok(())
}

/// Open the fifo for reading (the init is blocked opening it for writing),
/// read its byte, remove it: from then on the container is running.
pub fn release(dir: &ContainerDir, state: &State) -> Result<()> {
    let fifo = dir.fifo();
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {}", fifo.display()))?;
    // SAFETY: fresh fd.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let pidfd = PidFd::open(state.pid, state.init_start_time)?
        .ok_or_else(|| anyhow!("container init is gone"))?;
    // Wait for the byte, or for the init to die first.
    let mut fds = [
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pidfd_raw(&pidfd),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
            continue;
        }
        break;
    }
    let mut b = [0u8; 1];
    let n = nix::unistd::read(fd.as_raw_fd(), &mut b).unwrap_or(0);
    if n != 1 {
        bail!("container init died before start");
    }
    let _ = std::fs::remove_file(&fifo);
    Ok(())
}

fn pidfd_raw(p: &PidFd) -> i32 {
    p.raw()
}

/// Send `sig` to the init (or, with `all`, to every process of the
/// container).
pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<()> {
    let (_dir, state, status) = load(store, id)?;
    status.check(Op::Kill)?;
    if all {
        for pid in container_pids(&state) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }
    let p = PidFd::open(state.pid, state.init_start_time)?
        .ok_or_else(|| anyhow!("container {id:?} is not running"))?;
    p.signal(sig)?;
    Ok(())
}

/// Every process of the container: those in the init's pid namespace when
/// it has its own, else just the init.
pub fn container_pids(state: &State) -> Vec<i32> {
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
    dir.remove()?;
    Ok(())
}
