//! cgroup v1 writers, one function per controller, each following runc's
//! `libcontainer/cgroups/fs` (order of writes, which zero means "unset").
//!
//! A value of 0 in config.json means "unset" for the fields where runc's Go
//! zero value did (memory limit, swap, reservation, cpu shares, quota, period).

use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxPids,
};

use super::fs::{self, write_res};
use super::Error;

const MEM: &str = "linux.resources.memory";

pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // An unlimited memory with swap unset means both unlimited (runc), but
    // only where swap accounting exists.
    if limit == -1 && swap == 0 && fs::exists(dir, "memory.memsw.limit_in_bytes") {
        swap = -1;
    }
    let set_mem = |v: i64| write_res(MEM, "memory", dir, "memory.limit_in_bytes", &v.to_string());
    let set_swap = |v: i64| {
        write_res(
            &format!("{MEM}.swap"),
            "memory",
            dir,
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
        )
    };
    // The kernel keeps memory <= memory+swap at every step, so when raising
    // both, swap goes first; when lowering, memory goes first.
    let swap_first = limit != 0
        && swap != 0
        && (swap == -1 || fs::read_u64("memory", dir, "memory.limit_in_bytes")? < swap as u64);
    if swap_first {
        set_swap(swap)?;
        set_mem(limit)?;
    } else {
        if limit != 0 {
            set_mem(limit)?;
        }
        if swap != 0 {
            set_swap(swap)?;
        }
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        let res = format!("{MEM}.reservation");
        write_res(
            &res,
            "memory",
            dir,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
        )?;
    }
    if let Some(t) = m.kernel_tcp().filter(|t| *t != 0) {
        let res = format!("{MEM}.kernelTCP");
        write_res(
            &res,
            "memory",
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &t.to_string(),
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        let res = format!("{MEM}.disableOOMKiller");
        write_res(&res, "memory", dir, "memory.oom_control", "1")?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::Unsupported {
                resource: format!("{MEM}.swappiness"),
                reason: format!("{s} is out of range (0-100)"),
            });
        }
        let res = format!("{MEM}.swappiness");
        write_res(&res, "memory", dir, "memory.swappiness", &s.to_string())?;
    }
    Ok(())
}

const CPU: &str = "linux.resources.cpu";

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        write_res(
            &format!("{CPU}.shares"),
            "cpu",
            dir,
            "cpu.shares",
            &shares.to_string(),
        )?;
        // The kernel clamps shares silently: read back to say so (runc).
        let got = fs::read_u64("cpu", dir, "cpu.shares")?;
        if got != shares {
            return Err(Error::Unsupported {
                resource: format!("{CPU}.shares"),
                reason: format!("{shares} is out of range: the kernel set {got}"),
            });
        }
    }
    let quota = c.quota().unwrap_or(0);
    let mut period_later = None;
    if let Some(p) = c.period().filter(|p| *p != 0) {
        let r = write_res(
            &format!("{CPU}.period"),
            "cpu",
            dir,
            "cpu.cfs_period_us",
            &p.to_string(),
        );
        match r {
            // A shorter period can be refused (EINVAL) while the old quota
            // stands; with a quota coming, retry after writing it (runc).
            Err(Error::Write { ref source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 =>
            {
                period_later = Some(p)
            }
            r => r?,
        }
    }
    if quota != 0 {
        write_res(
            &format!("{CPU}.quota"),
            "cpu",
            dir,
            "cpu.cfs_quota_us",
            &quota.to_string(),
        )?;
        if let Some(p) = period_later {
            write_res(
                &format!("{CPU}.period"),
                "cpu",
                dir,
                "cpu.cfs_period_us",
                &p.to_string(),
            )?;
        }
    }
    if let Some(b) = c.burst() {
        write_res(
            &format!("{CPU}.burst"),
            "cpu",
            dir,
            "cpu.cfs_burst_us",
            &b.to_string(),
        )?;
    }
    if let Some(i) = c.idle() {
        write_res(
            &format!("{CPU}.idle"),
            "cpu",
            dir,
            "cpu.idle",
            &i.to_string(),
        )?;
    }
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        let res = format!("{CPU}.realtimePeriod");
        write_res(&res, "cpu", dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        let res = format!("{CPU}.realtimeRuntime");
        write_res(&res, "cpu", dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    Ok(())
}

/// cpus/mems; the same file names on v1 and v2.
pub(super) fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_res(&format!("{CPU}.cpus"), "cpuset", dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_res(&format!("{CPU}.mems"), "cpuset", dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and a task cannot
/// join it then (ENOSPC): copy them from the parent, top down (runc's
/// `ensureParent`). `dirs` runs from just below the mount to the leaf.
pub(super) fn cpuset_inherit(mount: &Path, leaf: &Path) -> Result<(), Error> {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return Ok(());
    };
    let mut parent = mount.to_path_buf();
    for comp in rel.components() {
        let dir = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read("cpuset", &dir, file)?.trim().is_empty() {
                let v = fs::read("cpuset", &parent, file)?;
                fs::write("cpuset", &dir, file, v.trim())?;
            }
        }
        parent = dir;
    }
    Ok(())
}

pub(super) fn pids(dir: &Path, p: &LinuxPids) -> Result<(), Error> {
    // runc: a limit <= 0 means no limit.
    let v = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".into()
    };
    write_res("linux.resources.pids.limit", "pids", dir, "pids.max", &v)
}

const BLKIO: &str = "linux.resources.blockIO";

pub(super) fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    // CFQ had blkio.weight; with BFQ the kernel offers blkio.bfq.weight (runc).
    let (wfile, wdfile) = if fs::exists(dir, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    let no_weight = |what: &str, file: &str| Error::Unsupported {
        resource: format!("{BLKIO}.{what}"),
        reason: format!("the blkio controller has no blkio.weight or {file} on this host"),
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write_res("", "blkio", dir, wfile, &w.to_string())
            .map_err(|e| map_missing(e, || no_weight("weight", wfile)))?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        let res = format!("{BLKIO}.leafWeight");
        write_res(&res, "blkio", dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            fs::write_res("", "blkio", dir, wdfile, &format!("{dev} {w}"))
                .map_err(|e| map_missing(e, || no_weight("weightDevice", wdfile)))?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            let res = format!("{BLKIO}.weightDevice.leafWeight");
            write_res(
                &res,
                "blkio",
                dir,
                "blkio.leaf_weight_device",
                &format!("{dev} {w}"),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "read_bps_device",
        ),
        (
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "write_bps_device",
        ),
        (
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "read_iops_device",
        ),
        (
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "write_iops_device",
        ),
    ];
    for (name, list, file) in throttles {
        for t in list.iter().flatten() {
            let v = format!("{}:{} {}", t.major(), t.minor(), t.rate());
            let res = format!("{BLKIO}.{name}");
            write_res(&res, "blkio", dir, &format!("blkio.throttle.{file}"), &v)?;
        }
    }
    Ok(())
}

/// Replace a "file missing" error by a better-worded one.
fn map_missing(e: Error, f: impl FnOnce() -> Error) -> Error {
    match e {
        Error::Unsupported { .. } => f(),
        e => e,
    }
}

pub(super) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), Error> {
    for l in limits {
        let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
        let res = format!("linux.resources.hugepageLimits[{}]", l.page_size());
        write_res(&res, "hugetlb", dir, &file, &l.limit().to_string())?;
    }
    Ok(())
}

pub(super) fn net_cls(dir: &Path, classid: u32) -> Result<(), Error> {
    let res = "linux.resources.network.classID";
    write_res(res, "net_cls", dir, "net_cls.classid", &classid.to_string())
}

pub(super) fn net_prio(dir: &Path, n: &LinuxNetwork) -> Result<(), Error> {
    for p in n.priorities().iter().flatten() {
        let v = format!("{} {}", p.name(), p.priority());
        let res = "linux.resources.network.priorities";
        write_res(res, "net_prio", dir, "net_prio.ifpriomap", &v)?;
    }
    Ok(())
}

/// The kernel's rule syntax: `type major:minor access`, `*` for any number.
pub(super) fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
    let access = d
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    let typ = d.typ().unwrap_or_default();
    let typ = typ.as_str();
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

/// Rules in config.json order, each to devices.allow or devices.deny; the
/// usual list opens with a deny-all, so everything is denied first and the
/// allows follow (runc's resulting state).
pub(super) fn devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), Error> {
    for d in rules {
        let file = if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_res(
            "linux.resources.devices",
            "devices",
            dir,
            file,
            &device_rule(d),
        )?;
    }
    Ok(())
}

/// Freeze: retry while the state reads FREEZING (runc: new tasks appearing
/// can keep a v1 freezer from settling; an occasional thaw helps it along).
pub(super) fn freeze(dir: &Path) -> Result<(), Error> {
    for i in 0..1000 {
        if i % 50 == 49 {
            let _ = fs::write("freezer", dir, "freezer.state", "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        fs::write("freezer", dir, "freezer.state", "FROZEN")?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(10));
        }
        match fs::read("freezer", dir, "freezer.state")?.trim() {
            "FREEZING" => continue,
            "FROZEN" => return Ok(()),
            other => {
                return Err(Error::Freeze {
                    path: dir.join("freezer.state"),
                    reason: format!("unexpected state {other:?} after freezing"),
                })
            }
        }
    }
    // Never leave a cgroup half frozen.
    let _ = fs::write("freezer", dir, "freezer.state", "THAWED");
    Err(Error::Freeze {
        path: dir.join("freezer.state"),
        reason: "stuck in FREEZING; thawed again".into(),
    })
}

pub(super) fn thaw(dir: &Path) -> Result<(), Error> {
    fs::write("freezer", dir, "freezer.state", "THAWED")
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, Error> {
    // FREEZING counts as frozen for the caller: pause has not been undone.
    Ok(fs::read("freezer", dir, "freezer.state")?.trim() != "THAWED")
}
