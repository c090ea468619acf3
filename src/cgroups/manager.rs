//! The Manager: effects on a container's cgroups, whatever the layout.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::paths::{CgroupPaths, Hierarchy};
use super::{fs, v1, v2, Error, Layout};

/// Which writer a controller goes to.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    V1(&'a Hierarchy),
    V2(&'a Hierarchy),
}

/// The hierarchy hosting a controller: its v1 mount (`v1_name`), else the
/// cgroup2 one when it offers `v2_name` (`None`: a core v2 feature such as
/// cgroup.freeze, present in every cgroup2 directory).
pub(crate) fn route<'a>(
    p: &'a CgroupPaths,
    v1_name: &str,
    v2_name: Option<&str>,
) -> Option<Target<'a>> {
    if let Some(h) = p.v1.get(v1_name) {
        return Some(Target::V1(h));
    }
    let u = p.unified.as_ref()?;
    match v2_name {
        None => Some(Target::V2(u)),
        Some(c) if p.unified_controllers.iter().any(|x| x == c) => Some(Target::V2(u)),
        Some(_) => None,
    }
}

pub(crate) fn no_controller(resource: &str, v1_name: &str, v2_name: Option<&str>) -> Error {
    let name = match v2_name {
        Some(v2) if v2 != v1_name => format!("{v1_name} (v1) or {v2} (v2)"),
        _ => v1_name.to_string(),
    };
    Error::Unsupported {
        resource: resource.into(),
        reason: format!("the {name} controller is not available on this host"),
    }
}

pub struct Manager {
    paths: CgroupPaths,
}

impl Manager {
    pub fn new(paths: CgroupPaths) -> Self {
        Manager { paths }
    }

    /// What state.json should keep (after `create`, it lists what was made).
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn need(&self, res: &str, v1_name: &str, v2_name: Option<&str>) -> Result<Target<'_>, Error> {
        route(&self.paths, v1_name, v2_name).ok_or_else(|| no_controller(res, v1_name, v2_name))
    }

    /// mkdir -p the container's directory in every hierarchy, recording each
    /// directory made so that `destroy` removes exactly those. On failure,
    /// what this call made is removed again.
    pub fn create(&mut self) -> Result<(), Error> {
        let before = self.paths.created.len();
        let res = self.create_dirs();
        if res.is_err() {
            for d in self.paths.created.drain(before..).rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        res
    }

    fn create_dirs(&mut self) -> Result<(), Error> {
        let hs: Vec<Hierarchy> = self.paths.hierarchies().into_iter().cloned().collect();
        for h in &hs {
            let rel = h.dir.strip_prefix(&h.mount).map_err(|_| Error::BadPath {
                path: h.dir.display().to_string(),
                reason: format!("not below the mount {}", h.mount.display()),
            })?;
            let mut dir = h.mount.clone();
            for c in rel.components() {
                dir.push(c);
                match std::fs::create_dir(&dir) {
                    Ok(()) => self.paths.created.push(dir.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        return Err(Error::Dir {
                            op: "mkdir",
                            path: dir,
                            source,
                        })
                    }
                }
            }
        }
        if let Some(h) = self.paths.v1.get("cpuset") {
            v1::cpuset_inherit(&h.mount, &h.dir)?;
        }
        if let (Layout::V2, Some(u)) = (self.paths.layout, &self.paths.unified) {
            v2::enable_controllers(&u.mount, &u.dir, None)?;
        }
        Ok(())
    }

    /// Move `pid` into the container's cgroup of every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for h in self.paths.hierarchies() {
            let mut tries = 0;
            loop {
                match fs::write("cgroup", &h.dir, "cgroup.procs", &pid.to_string()) {
                    // EINVAL: the task may still be TASK_NEW; runc retries.
                    Err(Error::Write { ref source, .. })
                        if source.raw_os_error() == Some(libc::EINVAL) && tries < 5 =>
                    {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(30));
                    }
                    r => break r?,
                }
            }
        }
        Ok(())
    }

    /// Called by a freshly cloned, single-threaded child: move itself into
    /// the container's cgroups. In each v1 hierarchy by writing "0" to
    /// `tasks`: a thread moving itself is the one migration the kernel makes
    /// without the global cgroup_threadgroup_rwsem, which a write of a pid
    /// to cgroup.procs takes for writing and which then waits for an RCU
    /// grace period (measured here: 4-25 ms for the first write of a burst,
    /// 0.4 ms for the self-moves). Single-threaded, the thread is the whole
    /// process. cgroup2 has no such file: there clone3's CLONE_INTO_CGROUP
    /// (`clone_into`) placed the child already (`in_cgroup2`), or it writes
    /// "0" to cgroup.procs (older kernels; the grace period is paid then).
    pub fn join_self(&self, in_cgroup2: bool) -> Result<(), Error> {
        let mut done: Vec<&Path> = Vec::new();
        for h in self.paths.v1.values() {
            if !done.contains(&h.dir.as_path()) {
                fs::write("cgroup", &h.dir, "tasks", "0")?;
                done.push(&h.dir);
            }
        }
        match &self.paths.unified {
            Some(u) if !in_cgroup2 => fs::write("cgroup", &u.dir, "cgroup.procs", "0"),
            _ => Ok(()),
        }
    }

    /// Write the limits of `r`; used by create and by update. Resources the
    /// host cannot apply give `Error::Unsupported` naming the resource.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        if let Some(m) = r.memory() {
            let set = m.limit().is_some()
                || m.swap().is_some()
                || m.reservation().is_some()
                || m.swappiness().is_some()
                || m.disable_oom_killer() == Some(true)
                || m.kernel_tcp().is_some();
            if set {
                match self.need("linux.resources.memory", "memory", Some("memory"))? {
                    Target::V1(h) => v1::memory(&h.dir, m)?,
                    Target::V2(h) => self.v2(h, "memory", |d| v2::memory(d, m))?,
                }
            }
        }
        if let Some(c) = r.cpu() {
            let set = c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_period().is_some()
                || c.realtime_runtime().is_some();
            if set {
                match self.need("linux.resources.cpu", "cpu", Some("cpu"))? {
                    Target::V1(h) => v1::cpu(&h.dir, c)?,
                    Target::V2(h) => self.v2(h, "cpu", |d| v2::cpu(d, c))?,
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                let res = "linux.resources.cpu.cpus/mems";
                match self.need(res, "cpuset", Some("cpuset"))? {
                    Target::V1(h) => v1::cpuset(&h.dir, c)?,
                    Target::V2(h) => self.v2(h, "cpuset", |d| v1::cpuset(d, c))?,
                }
            }
        }
        if let Some(p) = r.pids() {
            match self.need("linux.resources.pids", "pids", Some("pids"))? {
                Target::V1(h) => v1::pids(&h.dir, p)?,
                Target::V2(h) => self.v2(h, "pids", |d| v2::pids(d, p))?,
            }
        }
        if let Some(b) = r.block_io() {
            match self.need("linux.resources.blockIO", "blkio", Some("io"))? {
                Target::V1(h) => v1::blkio(&h.dir, b)?,
                Target::V2(h) => self.v2(h, "io", |d| v2::io(d, b))?,
            }
        }
        if let Some(l) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
            match self.need("linux.resources.hugepageLimits", "hugetlb", Some("hugetlb"))? {
                Target::V1(h) => v1::hugetlb(&h.dir, l)?,
                Target::V2(h) => self.v2(h, "hugetlb", |d| v2::hugetlb(d, l))?,
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                let res = "linux.resources.network.classID";
                match self.need(res, "net_cls", None) {
                    Ok(Target::V1(h)) => v1::net_cls(&h.dir, id)?,
                    _ => return Err(no_v1(res, "net_cls")),
                }
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                let res = "linux.resources.network.priorities";
                match self.need(res, "net_prio", None) {
                    Ok(Target::V1(h)) => v1::net_prio(&h.dir, n)?,
                    _ => return Err(no_v1(res, "net_prio")),
                }
            }
        }
        if let Some(d) = r.devices().as_deref().filter(|d| !d.is_empty()) {
            match self.need("linux.resources.devices", "devices", None)? {
                Target::V1(h) => v1::devices(&h.dir, d)?,
                Target::V2(h) => super::ebpf::apply(&h.dir, d)?,
            }
        }
        if let Some(kv) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            self.apply_unified(kv)?;
        }
        Ok(())
    }

    /// v2 writes: on a hybrid host the controller is enabled on the way down
    /// first (see `v2::enable_controllers`); on pure v2 `create` did it.
    fn v2(
        &self,
        h: &Hierarchy,
        ctrl: &str,
        f: impl FnOnce(&Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.paths.layout == Layout::Hybrid {
            v2::enable_controllers(&h.mount, &h.dir, Some(ctrl))?;
        }
        f(&h.dir)
    }

    /// `unified` needs cgroup v2. On a hybrid host a key may name only a
    /// controller the unified hierarchy hosts (or a core `cgroup.` file).
    fn apply_unified(&self, kv: &std::collections::HashMap<String, String>) -> Result<(), Error> {
        let Some(u) = &self.paths.unified else {
            return Err(Error::Unsupported {
                resource: "linux.resources.unified".into(),
                reason: "needs cgroup v2, and this host has only cgroup v1".into(),
            });
        };
        for k in kv.keys() {
            super::validate::check_unified_key(&self.paths, k)?;
            let ctrl = k.split('.').next().unwrap_or_default();
            if ctrl != "cgroup" && self.paths.layout == Layout::Hybrid {
                v2::enable_controllers(&u.mount, &u.dir, Some(ctrl))?;
            }
        }
        v2::unified(&u.dir, kv)
    }

    /// The freezer: v1 `freezer` where mounted, else cgroup v2's core
    /// cgroup.freeze (which needs no controller).
    fn freezer(&self) -> Result<Target<'_>, Error> {
        self.need("freezer", "freezer", None)
    }

    pub fn freeze(&self) -> Result<(), Error> {
        match self.freezer()? {
            Target::V1(h) => v1::freeze(&h.dir),
            Target::V2(h) => v2::freeze(&h.dir),
        }
    }

    pub fn thaw(&self) -> Result<(), Error> {
        match self.freezer()? {
            Target::V1(h) => v1::thaw(&h.dir),
            Target::V2(h) => v2::thaw(&h.dir),
        }
    }

    pub fn is_frozen(&self) -> Result<bool, Error> {
        match self.freezer()? {
            Target::V1(h) => v1::is_frozen(&h.dir),
            Target::V2(h) => v2::is_frozen(&h.dir),
        }
    }

    /// The hierarchy to list processes from: all hold the same processes;
    /// prefer the cgroup2 one on V2, else a v1 one that is always mounted.
    fn procs_dir(&self) -> Option<&Path> {
        if self.paths.layout == Layout::V2 {
            return self.paths.unified.as_ref().map(|u| u.dir.as_path());
        }
        [
            "freezer",
            "pids",
            "memory",
            "cpu",
            "devices",
            "name=systemd",
        ]
        .iter()
        .find_map(|c| self.paths.v1.get(*c))
        .or(self.paths.unified.as_ref())
        .map(|h| h.dir.as_path())
    }

    /// Every pid in the container's cgroup and its sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        Ok(out)
    }

    /// Signal every process of the cgroup. SIGKILL with cgroup.kill (v2,
    /// Linux 5.14+) is one write the kernel makes race-free; otherwise the
    /// cgroup is frozen so that no fork escapes between listing and
    /// signalling, then thawed (a SIGKILLed task must run to die).
    pub fn kill_all(&self, sig: i32) -> Result<(), Error> {
        if sig == libc::SIGKILL {
            if let Some(u) = &self.paths.unified {
                if fs::exists(&u.dir, "cgroup.kill") && fs::exists(&u.dir, "cgroup.procs") {
                    return fs::write("cgroup", &u.dir, "cgroup.kill", "1");
                }
            }
        }
        let signal = Signal::try_from(sig).map_err(|e| Error::Kill {
            pid: 0,
            sig,
            source: io::Error::from_raw_os_error(e as i32),
        })?;
        let was_frozen = self.is_frozen().unwrap_or(false);
        let froze = !was_frozen && self.freeze().is_ok();
        let res = self.pids().and_then(|pids| {
            for pid in pids {
                match kill(Pid::from_raw(pid), signal) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        return Err(Error::Kill {
                            pid,
                            sig,
                            source: io::Error::from_raw_os_error(e as i32),
                        })
                    }
                }
            }
            Ok(())
        });
        if froze || (was_frozen && sig == libc::SIGKILL) {
            self.thaw()?;
        }
        res
    }

    /// Remove the container's cgroups: sub-cgroups made inside the container
    /// first, then every directory `create` made, deepest first. EBUSY while
    /// dying tasks leave is retried briefly; a missing directory is fine, so
    /// destroy can run twice.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut first_err = None;
        for h in self.paths.hierarchies() {
            if self.paths.created.contains(&h.dir) {
                if let Err(e) = remove_children(&h.dir) {
                    first_err.get_or_insert(e);
                }
            }
        }
        for d in self.paths.created.iter().rev() {
            if let Err(e) = rmdir_retry(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// An `O_PATH` fd of the container's cgroup2 (unified) cgroup, on v2
    /// and hybrid hosts, for clone3 `CLONE_INTO_CGROUP`: the child starts
    /// there, with no window outside it and no cgroup.procs write (whose
    /// global lock waits for an RCU grace period). None without a cgroup2
    /// hierarchy, or when the directory is missing or not cgroup2.
    pub fn clone_into(&self) -> Option<OwnedFd> {
        let u = self.paths.unified.as_ref()?;
        if !super::layout::is_cgroup2(&u.dir) {
            return None;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&u.dir)
            .ok()
            .map(OwnedFd::from)
    }

    pub fn stats(&self) -> Result<super::Stats, Error> {
        super::stats::collect(&self.paths)
    }

    pub fn oom_events(&self) -> Result<super::OomWatch, Error> {
        super::oom::watch(&self.paths)
    }
}

fn no_v1(res: &str, ctrl: &str) -> Error {
    Error::Unsupported {
        resource: res.into(),
        reason: format!("the {ctrl} controller (cgroup v1 only) is not mounted on this host"),
    }
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Dir {
                op: "readdir",
                path: dir.into(),
                source,
            })
        }
    };
    Ok(rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    match fs::read_pids("cgroup", dir) {
        Ok(p) => out.extend(p),
        // A sub-cgroup removed while walking: its tasks are gone too.
        Err(Error::Read { ref source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for d in subdirs(dir)? {
        collect_pids(&d, out)?;
    }
    Ok(())
}

fn remove_children(dir: &Path) -> Result<(), Error> {
    for d in subdirs(dir)? {
        remove_children(&d)?;
        rmdir_retry(&d)?;
    }
    Ok(())
}

fn rmdir_retry(d: &Path) -> Result<(), Error> {
    let mut pause = Duration::from_millis(10);
    for attempt in 0.. {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 10 => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(source) => {
                return Err(Error::Dir {
                    op: "rmdir",
                    path: d.into(),
                    source,
                })
            }
        }
    }
    unreachable!()
}
