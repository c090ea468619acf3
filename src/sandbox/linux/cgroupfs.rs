//! What the cgroup mount needs to know of the host's hierarchies: each
//! mountpoint, its options and the calling process's own cgroup in it.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    pub v2: bool,
    /// Superblock options naming the controllers (e.g. "rw,memory").
    pub options: String,
    /// This process's cgroup in the hierarchy (from /proc/self/cgroup).
    pub own_path: PathBuf,
}

/// Every cgroup hierarchy mounted on the host, with our place in each.
pub fn hierarchies() -> Vec<Hierarchy> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        let fstype = post.next().unwrap_or("");
        let _src = post.next();
        let super_opts = post.next().unwrap_or("");
        let mp = pre.split_whitespace().nth(4).unwrap_or("");
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let ctrls: Vec<&str> = super_opts
            .split(',')
            .filter(|o| {
                !matches!(
                    *o,
                    "rw" | "ro"
                        | "relatime"
                        | "nosuid"
                        | "nodev"
                        | "noexec"
                        | "nsdelegate"
                        | "memory_recursiveprot"
                )
            })
            .collect();
        let own = cgroup
            .lines()
            .find_map(|l| {
                let mut p = l.splitn(3, ':');
                let (_, c, path) = (p.next()?, p.next()?, p.next()?);
                let matches = if v2 {
                    c.is_empty()
                } else {
                    let cs: Vec<&str> = c.split(',').collect();
                    !ctrls.is_empty() && ctrls.iter().all(|x| cs.contains(x))
                };
                matches.then(|| PathBuf::from(path))
            })
            .unwrap_or_else(|| PathBuf::from("/"));
        out.push(Hierarchy {
            mountpoint: PathBuf::from(mp),
            v2,
            options: ctrls.join(","),
            own_path: own,
        });
    }
    out
}

pub fn own_v2_path() -> PathBuf {
    hierarchies()
        .into_iter()
        .find(|h| h.v2)
        .map(|h| h.own_path)
        .unwrap_or_else(|| PathBuf::from("/"))
}
