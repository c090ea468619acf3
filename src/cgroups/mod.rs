//! cgroups: placement, limits, freezing, signalling, stats and OOM events of
//! a container's cgroups on v1, v2 and hybrid hosts.
//!
//! # Public API
//!
//! ```text
//! enum Layout { V1, V2, Hybrid }
//! fn detect() -> Result<Layout, Error>                       // from /proc/self/mountinfo
//! struct Host { mounts, own }                                 // the host view: Host::read(), Host::parse(mountinfo, proc_cgroup)
//! fn plan(cgroups_path: Option<&str>, id: &str) -> Result<CgroupPaths, Error>       // no side effects
//! fn plan_on(host: &Host, cgroups_path: Option<&str>, id: &str) -> Result<CgroupPaths, Error>
//! fn validate(r: &LinuxResources, paths: &CgroupPaths) -> Result<Vec<String>, Error> // warnings; no side effects
//! struct CgroupPaths { layout, v1, unified, unified_controllers, created }          // serde: keep in state.json
//! struct Manager
//!   fn new(paths: CgroupPaths) -> Manager
//!   fn paths(&self) -> &CgroupPaths                           // persist this after create()
//!   fn create(&mut self) -> Result<(), Error>                 // mkdir -p; records what it made
//!   fn add_pid(&self, pid: i32) -> Result<(), Error>          // cgroup.procs of every hierarchy
//!   fn apply(&self, r: &LinuxResources) -> Result<(), Error>  // create and update
//!   fn freeze / thaw(&self) -> Result<(), Error>; fn is_frozen(&self) -> Result<bool, Error>
//!   fn pids(&self) -> Result<Vec<i32>, Error>                 // recursive
//!   fn kill_all(&self, sig: i32) -> Result<(), Error>
//!   fn stats(&self) -> Result<Stats, Error>                   // runc `events --stats` shape
//!   fn oom_events(&self) -> Result<OomWatch, Error>
//!   fn destroy(&self) -> Result<(), Error>
//!   fn clone_into(&self) -> Option<OwnedFd>                   // cgroup2 dir for clone3 CLONE_INTO_CGROUP
//!   fn join_self(&self, in_cgroup2: bool) -> Result<(), Error> // in the new child: "0" to v1 `tasks` (and cgroup2 procs)
//! struct OomWatch: AsFd (poll it for reading), fn wait(&mut self) -> Result<OomEvent, Error>
//! enum OomEvent { Oom(u64), Gone }
//! fn shares_to_weight(u64) -> u64; fn blkio_weight_to_io(u16) -> u64   // runc's conversions
//! ```
//!
//! Devices: v1 `devices.allow`/`devices.deny` in config order; v2 an eBPF
//! BPF_PROG_TYPE_CGROUP_DEVICE program (see `ebpf.rs`).
//!
//! # Lifecycle use
//!
//! `create`: `plan` → `validate` (print warnings) → `Manager::new` → `create`
//! → save `paths()` in state.json → `apply` → clone3 into `clone_into`,
//! and the child calls `join_self` first thing → unshare the cgroup
//! namespace only after that. Exec places its child the same way. `update`: `validate` + `apply`.
//! `delete`: `kill_all(SIGKILL)` when processes remain, then `destroy`.
//!
//! # Hybrid hosts
//!
//! Each controller goes to the hierarchy that hosts it: a v1 mount if one
//! has it, else the cgroup2 mount if it lists it in `cgroup.controllers`
//! (hugetlb on this machine). Processes join every v1 hierarchy, the
//! `name=systemd` one included, and the unified one, as runc does.
//!
//! # v2 controllers and busy ancestors
//!
//! See `v2::enable_controllers`: `+ctrl` is written into the
//! `cgroup.subtree_control` of each ancestor from the mount root down. On a
//! pure v2 host every available controller is enabled at `create` (runc); on
//! a hybrid host only the controllers a resource needs, at `apply`, so that a
//! container without such resources leaves the shared unified root alone.

mod ebpf;
mod fs;
mod layout;
mod manager;
mod oom;
mod paths;
mod stats;
mod v1;
mod v2;
mod validate;

#[cfg(test)]
mod tests_fake;
#[cfg(test)]
mod tests_real;

use std::io;
use std::path::PathBuf;

pub use layout::{detect, CgroupMount, Host, Layout, ProcCgroup};
pub use manager::Manager;
pub use oom::{OomEvent, OomWatch};
pub use paths::{plan, plan_on, CgroupPaths, Hierarchy, View};
pub use stats::Stats;
pub use v2::{blkio_weight_to_io, shares_to_weight};
pub use validate::validate;

/// Errors of the cgroup module; each names the file, controller or resource.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {controller}: {}: write {value:?}: {}", path.display(), errno(source))]
    Write {
        controller: String,
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cgroup {controller}: {}: read: {}", path.display(), errno(source))]
    Read {
        controller: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cgroup {controller}: {}: unexpected content {content:?}: {reason}", path.display())]
    Parse {
        controller: String,
        path: PathBuf,
        content: String,
        reason: String,
    },
    #[error("cgroup: {}: {op}: {}", path.display(), errno(source))]
    Dir {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A resource of config.json this host cannot apply.
    #[error("{resource}: {reason}")]
    Unsupported { resource: String, reason: String },
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    #[error(
        "linux.cgroupsPath {path:?}: the systemd cgroup driver needs a running systemd (not found)"
    )]
    NoSystemd { path: String },
    /// mountinfo or /proc/self/cgroup could not be read or understood.
    #[error("{}: {reason}", file.display())]
    HostView { file: PathBuf, reason: String },
    #[error("cgroup freezer: {}: {reason}", path.display())]
    Freeze { path: PathBuf, reason: String },
    #[error("cgroup: signal {sig} to pid {pid}: {}", errno(source))]
    Kill {
        pid: i32,
        sig: i32,
        source: io::Error,
    },
    /// A syscall on a cgroup file (eventfd, inotify, bpf, …).
    #[error("cgroup {controller}: {}: {what}: {}", path.display(), errno(source))]
    Sys {
        controller: String,
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

/// "Device or resource busy" rather than "… (os error 16)".
fn errno(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}
