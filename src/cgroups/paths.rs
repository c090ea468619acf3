//! Placement: where a container's cgroups go, decided without side effects,
//! and recorded in a serializable `CgroupPaths` that state.json keeps so later
//! invocations (kill, delete, pause, ps, update, events) find them again.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{Host, Layout};
use super::Error;

/// One hierarchy: its mount point and the container's directory in it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub dir: PathBuf,
}

/// Everything needed to find and manage a container's cgroups again.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CgroupPaths {
    pub layout: Layout,
    /// v1 hierarchies keyed by each controller they host (`cpu`, `cpuacct`,
    /// `name=systemd`, …); co-mounted controllers share one `Hierarchy`.
    #[serde(default)]
    pub v1: BTreeMap<String, Hierarchy>,
    /// The cgroup2 hierarchy (all of it on V2, `unified` on Hybrid).
    #[serde(default)]
    pub unified: Option<Hierarchy>,
    /// Controllers the cgroup2 hierarchy offers: every controller on V2, on
    /// Hybrid only those no v1 hierarchy took (hugetlb on this machine).
    #[serde(default)]
    pub unified_controllers: Vec<String>,
    /// Directories `Manager::create` made, parents first. `destroy` removes
    /// exactly these, so a pre-existing parent (podman's, containerd's) stays.
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

impl CgroupPaths {
    /// Each distinct hierarchy once (co-mounted v1 controllers share one),
    /// v1 first, then the unified one.
    pub fn hierarchies(&self) -> Vec<&Hierarchy> {
        let mut out: Vec<&Hierarchy> = Vec::new();
        for h in self.v1.values().chain(self.unified.iter()) {
            if !out.iter().any(|o| o.dir == h.dir) {
                out.push(h);
            }
        }
        out
    }

    /// Every hierarchy as a container's `cgroup` mount shows it: its mount
    /// point, the container's directory, and the options that mount it
    /// afresh (a v1 hierarchy's controllers, co-mounted ones together).
    pub fn views(&self) -> Vec<View> {
        let mut out: Vec<View> = Vec::new();
        for (ctrl, h) in &self.v1 {
            match out.iter_mut().find(|v| v.mount == h.mount) {
                Some(v) => v.options = format!("{},{ctrl}", v.options),
                None => out.push(View {
                    mount: h.mount.clone(),
                    dir: h.dir.clone(),
                    v2: false,
                    options: ctrl.clone(),
                }),
            }
        }
        out.extend(self.unified.iter().map(|h| View {
            mount: h.mount.clone(),
            dir: h.dir.clone(),
            v2: true,
            options: String::new(),
        }));
        out
    }
}

/// One hierarchy as `CgroupPaths::views` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub mount: PathBuf,
    pub dir: PathBuf,
    pub v2: bool,
    /// For a fresh v1 mount: its controllers, comma-separated.
    pub options: String,
}

/// Where `linux.cgroupsPath` puts the container, before any side effect.
#[derive(Debug, PartialEq, Eq)]
enum Placement {
    /// From each hierarchy's root.
    Absolute(PathBuf),
    /// Below the cgroup the calling process is in.
    Relative(PathBuf),
}

/// Plan the cgroups of container `id` on the real host.
pub fn plan(cgroups_path: Option<&str>, id: &str) -> Result<CgroupPaths, Error> {
    plan_on(&Host::read()?, cgroups_path, id)
}

/// Plan on a given host view (the unit tests pass a fake one).
///
/// * absolute `cgroupsPath` → below each hierarchy's mount point;
/// * relative → below the caller's own cgroup in each hierarchy;
/// * none → `<id>` below the caller's own cgroup;
/// * `slice:prefix:name` (systemd driver form) → an error: no systemd here.
pub fn plan_on(host: &Host, cgroups_path: Option<&str>, id: &str) -> Result<CgroupPaths, Error> {
    let layout = host.layout()?;
    let placement = placement(cgroups_path, id, systemd_running())?;
    let dir_in = |m: &super::layout::CgroupMount| -> Result<PathBuf, Error> {
        Ok(match &placement {
            Placement::Absolute(p) => m.mount_point.join(p),
            Placement::Relative(p) => host.own_dir(m)?.join(p),
        })
    };
    let mut v1 = BTreeMap::new();
    for m in host.mounts.iter().filter(|m| !m.v2) {
        let h = Hierarchy {
            mount: m.mount_point.clone(),
            dir: dir_in(m)?,
        };
        for c in &m.controllers {
            v1.entry(c.clone()).or_insert_with(|| h.clone());
        }
    }
    let (unified, unified_controllers) = match host.v2_mount() {
        Some(m) => (
            Some(Hierarchy {
                mount: m.mount_point.clone(),
                dir: dir_in(m)?,
            }),
            m.controllers.clone(),
        ),
        None => (None, Vec::new()),
    };
    Ok(CgroupPaths {
        layout,
        v1,
        unified,
        unified_controllers,
        created: Vec::new(),
    })
}

/// What systemd itself checks (sd_booted): /run/systemd/system exists.
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn placement(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Placement, Error> {
    let bad = |p: &str, reason: &str| Error::BadPath {
        path: p.to_string(),
        reason: reason.to_string(),
    };
    let p = match cgroups_path {
        None | Some("") => {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                return Err(bad(id, "the container id cannot name a cgroup"));
            }
            return Ok(Placement::Relative(PathBuf::from(id)));
        }
        Some(p) => p,
    };
    if !p.starts_with('/') && p.split(':').count() == 3 {
        // The systemd driver form: slice:prefix:name.
        let parts: Vec<&str> = p.split(':').collect();
        if !parts[0].is_empty() && !parts[0].ends_with(".slice") {
            return Err(bad(p, "the slice of slice:prefix:name must end in .slice"));
        }
        if !systemd {
            return Err(Error::NoSystemd { path: p.into() });
        }
        return Err(bad(p, "the systemd cgroup driver is not implemented yet"));
    }
    let path = Path::new(p);
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad(p, "\"..\" would leave the cgroup tree"))
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(bad(p, "a container cannot take a hierarchy's root cgroup"));
    }
    Ok(if path.is_absolute() {
        Placement::Absolute(clean)
    } else {
        Placement::Relative(clean)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
    const OWN: &str = "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n";

    fn host() -> Host {
        Host::parse(HYBRID, OWN).unwrap()
    }

    #[test]
    fn default_is_the_id_below_our_own_cgroup() {
        let p = plan_on(&host(), None, "c1").unwrap();
        assert_eq!(p.layout, Layout::Hybrid);
        assert_eq!(
            p.v1["memory"].dir,
            Path::new("/sys/fs/cgroup/memory/process_api/abc/c1")
        );
        assert_eq!(p.v1["cpu"], p.v1["cpuacct"], "co-mounted: one hierarchy");
        assert_eq!(
            p.v1["name=systemd"].dir,
            Path::new("/sys/fs/cgroup/systemd/c1")
        );
        assert_eq!(
            p.unified.as_ref().unwrap().dir,
            Path::new("/sys/fs/cgroup/unified/c1")
        );
        assert_eq!(p.hierarchies().len(), 4);
    }

    #[test]
    fn absolute_and_relative_paths() {
        let p = plan_on(&host(), Some("/a/b"), "c1").unwrap();
        assert_eq!(p.v1["memory"].dir, Path::new("/sys/fs/cgroup/memory/a/b"));
        let p = plan_on(&host(), Some("x/./y"), "c1").unwrap();
        assert_eq!(
            p.v1["memory"].dir,
            Path::new("/sys/fs/cgroup/memory/process_api/abc/x/y")
        );
    }

    #[test]
    fn rejects_escapes_roots_and_systemd_without_systemd() {
        for bad in ["../x", "/a/../../b", "/"] {
            assert!(placement(Some(bad), "c", false).is_err(), "{bad}");
        }
        assert!(placement(None, "a/b", false).is_err());
        let e = placement(Some("system.slice:husk:c1"), "c1", false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.cgroupsPath \"system.slice:husk:c1\": \
             the systemd cgroup driver needs a running systemd (not found)"
        );
        assert!(placement(Some("nope:husk:c1"), "c1", false).is_err());
    }

    #[test]
    fn state_round_trip() {
        let p = plan_on(&host(), None, "c1").unwrap();
        let j = serde_json::to_string(&p).unwrap();
        assert!(j.contains("\"layout\":\"hybrid\""), "{j}");
        let back: CgroupPaths = serde_json::from_str(&j).unwrap();
        assert_eq!(back, p);
    }
}
