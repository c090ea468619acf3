//! `exec`.

use crate::container::lifecycle;
use crate::container::status::{Op, Status};
use crate::sandbox::linux::exec::ExecOpts;
use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{Capability, Process};
use std::path::PathBuf;

#[derive(Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process)
    pub command: Vec<String>,
    /// A process.json describing the process
    pub process: Option<PathBuf>,
    /// Allocate a pty
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    /// KEY=value, added to the environment
    pub env: Vec<String>,
    /// uid[:gid]
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Add a capability
    pub cap: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    /// A sub-cgroup to join (cgroup v2 style "path" or "controller:path")
    pub cgroup: Vec<String>,
    pub ignore_paused: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Build the process: --process FILE, or the container's own process with
/// the command and flags applied (as runc does).
fn process(a: &ExecArgs, config: &oci_spec::runtime::Spec) -> Result<Process> {
    if let Some(f) = &a.process {
        if !a.command.is_empty() {
            bail!("exec: give either --process or a command, not both");
        }
        return Ok(crate::spec::load_process(f)?);
    }
    if a.command.is_empty() {
        bail!("exec: no command given (and no --process)");
    }
    let mut p = config.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(c) = &a.cwd {
        p.set_cwd(c.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .map_err(|_| anyhow!("--user {u:?}: want uid[:gid] as numbers"))?;
        let gid: u32 = match gid {
            Some(g) => g
                .parse()
                .map_err(|_| anyhow!("--user {u:?}: want uid[:gid] as numbers"))?,
            None => 0,
        };
        p.user_mut().set_uid(uid);
        p.user_mut().set_gid(gid);
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let name = if c.to_ascii_uppercase().starts_with("CAP_") {
                c.to_ascii_uppercase()
            } else {
                format!("CAP_{}", c.to_ascii_uppercase())
            };
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| anyhow!("--cap {c:?}: unknown capability"))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ]
            .iter_mut()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    _ => caps.set_permitted(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(prof) = &a.apparmor {
        p.set_apparmor_profile(Some(prof.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    crate::spec::validate_process(&p, "process")?;
    Ok(p)
}

pub fn exec(store: &crate::container::Store, a: &ExecArgs) -> Result<i32> {
    if !a.cgroup.is_empty() {
        bail!("--cgroup: joining a sub-cgroup is not supported by husk yet");
    }
    let (dir, state, status) = lifecycle::load(store, &a.id)?;
    if !(a.ignore_paused && status == Status::Paused) {
        status.check(Op::Exec)?;
    }
    let p = process(a, &state.config)?;
    let tty = p.terminal().unwrap_or(false);
    if tty && a.detach && a.console_socket.is_none() {
        bail!("exec: a terminal with --detach needs --console-socket");
    }
    if !tty && a.console_socket.is_some() {
        bail!("--console-socket given but the process has no terminal");
    }
    if state.sandbox == "vm" {
        let path = dir.path.clone();
        drop(dir);
        return exec_vm(a, &path, &p);
    }
    drop(dir);
    let mgr = lifecycle::manager(&state);
    if !a.detach {
        super::foreground::prepare(true)?;
    }
    let opts = ExecOpts {
        config: &state.config,
        init_pid: state.pid,
        init_start_time: state.init_start_time,
        process: &p,
        console_socket: a.console_socket.as_deref(),
        preserve_fds: a.preserve_fds,
        cgroup: mgr.as_ref(),
    };
    let done = crate::sandbox::linux::exec::exec(&opts).map_err(|e| anyhow!(e))?;
    if let Some(f) = &a.pid_file {
        lifecycle::write_pid_file(f, done.pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    super::foreground::wait(done.pid, done.pty)
}

/// A VM container: the process runs in the guest, through the VMM.
fn exec_vm(a: &ExecArgs, state_dir: &std::path::Path, p: &Process) -> Result<i32> {
    use crate::sandbox::vm::{exec, host};
    if p.terminal().unwrap_or(false) {
        bail!("exec --tty: a terminal for exec is not supported in a microVM yet");
    }
    if a.preserve_fds > 0 {
        bail!("--preserve-fds: host fds cannot be passed into a microVM");
    }
    let sock = state_dir.join(host::EXEC_SOCK);
    match exec::exec(&sock, host::process_from_oci(p), a.detach).map_err(|e| anyhow!(e))? {
        exec::Done::Detached(pid) => {
            if let Some(f) = &a.pid_file {
                lifecycle::write_pid_file(f, pid)?;
            }
            Ok(0)
        }
        exec::Done::Exited(code) => Ok(code),
    }
}
