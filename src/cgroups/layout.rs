//! What the host offers: the cgroup mounts (from mountinfo) and the cgroup the
//! calling process is in (from /proc/self/cgroup). Everything is parsed from
//! text so that the unit tests can hand in a mount table whose mount points
//! live in a temporary directory (a fake cgroupfs) and run the real code.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

/// How the host mounts cgroups. Detected at run time, never assumed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 hierarchies (one mount per controller or group of controllers).
    V1,
    /// One cgroup2 hierarchy holds every controller.
    V2,
    /// v1 controller mounts plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`)
    /// that hosts the controllers no v1 hierarchy took.
    Hybrid,
}

/// One cgroup mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The mount's root inside its hierarchy (field 4 of mountinfo): not `/`
    /// inside a cgroup namespace or for a bind mount of a sub-cgroup.
    pub root: String,
    pub v2: bool,
    /// v1: the controllers of the hierarchy, `name=…` included; v2: the
    /// controllers listed in the mount's `cgroup.controllers`.
    pub controllers: Vec<String>,
}

/// One line of /proc/<pid>/cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Empty for the v2 line `0::/path`.
    pub controllers: Vec<String>,
    pub path: String,
}

/// The host view every decision is made from.
#[derive(Clone, Debug)]
pub struct Host {
    pub mounts: Vec<CgroupMount>,
    pub own: Vec<ProcCgroup>,
}

impl Host {
    /// The real host, seen by the calling process.
    pub fn read() -> Result<Host, Error> {
        let mi = read_text("/proc/self/mountinfo")?;
        let pc = read_text("/proc/self/cgroup")?;
        Host::parse(&mi, &pc)
    }

    /// Build from texts; the v2 mount's `cgroup.controllers` is read from the
    /// mount point (absent in a sample mount table: then no controllers).
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Result<Host, Error> {
        let mut mounts = parse_mountinfo(mountinfo)?;
        for m in mounts.iter_mut().filter(|m| m.v2) {
            let f = m.mount_point.join("cgroup.controllers");
            if let Ok(s) = std::fs::read_to_string(f) {
                m.controllers = s.split_whitespace().map(String::from).collect();
            }
        }
        Ok(Host {
            mounts,
            own: parse_proc_cgroup(proc_cgroup)?,
        })
    }

    pub fn layout(&self) -> Result<Layout, Error> {
        let v1 = self.mounts.iter().any(|m| !m.v2);
        let v2 = self.mounts.iter().any(|m| m.v2);
        match (v1, v2) {
            (true, true) => Ok(Layout::Hybrid),
            (true, false) => Ok(Layout::V1),
            (false, true) => Ok(Layout::V2),
            (false, false) => Err(Error::HostView {
                file: "/proc/self/mountinfo".into(),
                reason: "no cgroup or cgroup2 mount found".into(),
            }),
        }
    }

    /// The v1 mount hosting `controller`, if any.
    pub fn v1_mount(&self, controller: &str) -> Option<&CgroupMount> {
        self.mounts
            .iter()
            .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
    }

    pub fn v2_mount(&self) -> Option<&CgroupMount> {
        self.mounts.iter().find(|m| m.v2)
    }

    /// The directory of the caller's own cgroup in the hierarchy of `m`.
    pub fn own_dir(&self, m: &CgroupMount) -> Result<PathBuf, Error> {
        let line = self.own.iter().find(|l| {
            if m.v2 {
                l.controllers.is_empty()
            } else {
                l.controllers.iter().any(|c| m.controllers.contains(c))
            }
        });
        let Some(line) = line else {
            return Err(Error::HostView {
                file: "/proc/self/cgroup".into(),
                reason: format!(
                    "no line for the hierarchy mounted at {}",
                    m.mount_point.display()
                ),
            });
        };
        // /proc/self/cgroup and the mount root are both relative to the same
        // (namespace) root: strip the mount's root to get the path below it.
        let rel = if m.root == "/" {
            line.path.as_str()
        } else {
            line.path.strip_prefix(m.root.as_str()).unwrap_or("/")
        };
        Ok(m.mount_point.join(rel.trim_start_matches('/')))
    }
}

fn read_text(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::HostView {
        file: path.into(),
        reason: e.to_string(),
    })
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |j: usize| b.get(j).is_some_and(|c| (b'0'..=b'7').contains(c));
        if b[i] == b'\\' && octal(i + 1) && octal(i + 2) && octal(i + 3) {
            let d = |j: usize| u32::from(b[j] - b'0');
            out.push((d(i + 1) * 64 + d(i + 2) * 8 + d(i + 3)) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup and cgroup2 lines of a mountinfo text. A hierarchy mounted
/// twice (bind mounts) is kept once: the first mount wins.
pub fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>, Error> {
    let mut out: Vec<CgroupMount> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || Error::HostView {
            file: "/proc/self/mountinfo".into(),
            reason: format!("line {}: malformed: {line:?}", n + 1),
        };
        // id parent maj:min root mount-point options [optional…] - fstype source super-options
        let (left, right) = line.split_once(" - ").ok_or_else(bad)?;
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            return Err(bad());
        }
        let v2 = match r[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers: Vec<String> = if v2 {
            Vec::new()
        } else {
            // Super options are the controllers plus rw/ro and flags like
            // xattr or clone_children; keep controller names and name=….
            r[2].split(',')
                .filter(|o| o.starts_with("name=") || is_v1_controller(o))
                .map(String::from)
                .collect()
        };
        let m = CgroupMount {
            mount_point: PathBuf::from(unescape(l[4])),
            root: unescape(l[3]),
            v2,
            controllers,
        };
        let dup = out
            .iter()
            .any(|o| o.v2 == m.v2 && (m.v2 || o.controllers == m.controllers));
        if !dup {
            out.push(m);
        }
    }
    Ok(out)
}

/// v1 controllers the kernel knows; super options that are not controllers
/// (rw, relatime, xattr, noprefix, clone_children, release_agent=…) are not.
fn is_v1_controller(o: &str) -> bool {
    matches!(
        o,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "blkio"
            | "perf_event"
            | "hugetlb"
            | "pids"
            | "rdma"
            | "misc"
    )
}

/// Lines `hierarchy-id:controllers:path` of /proc/<pid>/cgroup.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = match (it.next(), it.next(), it.next()) {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => {
                    return Err(Error::HostView {
                        file: "/proc/self/cgroup".into(),
                        reason: format!("malformed line {l:?}"),
                    })
                }
            };
            Ok(ProcCgroup {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The real host's layout.
pub fn detect() -> Result<Layout, Error> {
    Host::read()?.layout()
}

/// Is a path a directory on a cgroup2 filesystem? Used to double-check a
/// unified mount before handing its fd to clone3.
pub(crate) fn is_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
99 31 0:32 / /mnt/memory\\040again rw,relatime - cgroup cgroup rw,memory
";
    const V2: &str = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn detects_the_three_layouts() {
        let pc = "0::/\n";
        assert_eq!(
            Host::parse(HYBRID, pc).unwrap().layout().unwrap(),
            Layout::Hybrid
        );
        assert_eq!(Host::parse(V1, pc).unwrap().layout().unwrap(), Layout::V1);
        assert_eq!(Host::parse(V2, pc).unwrap().layout().unwrap(), Layout::V2);
        let none = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        let e = Host::parse(none, pc).unwrap().layout().unwrap_err();
        assert!(e.to_string().contains("no cgroup or cgroup2 mount"), "{e}");
    }

    #[test]
    fn parses_controllers_and_skips_duplicates() {
        let m = parse_mountinfo(V1).unwrap();
        assert_eq!(m.len(), 2, "the second memory mount is a duplicate");
        assert_eq!(m[0].controllers, ["cpu", "cpuacct"]);
        let h = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(h[1].controllers, ["cpuset"], "clone_children is an option");
        assert_eq!(h[3].controllers, ["name=systemd"]);
        assert!(h[4].v2);
        assert_eq!(unescape("/mnt/memory\\040again"), "/mnt/memory again");
    }

    #[test]
    fn own_dir_follows_proc_self_cgroup_and_mount_root() {
        let pc =
            "4:memory:/process_api/abc\n3:cpuset:/\n2:cpu,cpuacct:/x\n1:name=systemd:/\n0::/u\n";
        let h = Host::parse(HYBRID, pc).unwrap();
        let mem = h.v1_mount("memory").unwrap();
        assert_eq!(
            h.own_dir(mem).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        let cpu = h.v1_mount("cpuacct").unwrap();
        assert_eq!(
            h.own_dir(cpu).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/x")
        );
        let u = h.v2_mount().unwrap();
        assert_eq!(h.own_dir(u).unwrap(), Path::new("/sys/fs/cgroup/unified/u"));
        // A mount whose root is a sub-cgroup (cgroup namespace, bind mount).
        let ns = "35 31 0:32 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let h = Host::parse(ns, pc).unwrap();
        let mem = h.v1_mount("memory").unwrap();
        assert_eq!(
            h.own_dir(mem).unwrap(),
            Path::new("/sys/fs/cgroup/memory/abc")
        );
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse_mountinfo("garbage\n").is_err());
        assert!(parse_proc_cgroup("nocolons\n").is_err());
    }
}
