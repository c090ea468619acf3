//! cgroup v2 writers, following runc's `libcontainer/cgroups/fs2`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxPids};

use super::fs::{self, write_res};
use super::Error;

/// OCI (v1-shaped) numbers to v2 strings: 0 unset, -1 "max".
fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// memory+swap (OCI) to swap alone (v2), as runc's
/// `ConvertMemorySwapToCgroupV2Value`.
pub(crate) fn swap_to_v2(swap: i64, memory: i64) -> Result<i64, String> {
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err("a swap limit needs a memory limit".into());
    }
    if memory < 0 {
        return Err(format!("invalid memory value {memory}"));
    }
    if swap < memory {
        return Err("memory+swap must be >= the memory limit".into());
    }
    Ok(swap - memory)
}

const MEM: &str = "linux.resources.memory";

/// swappiness and disableOOMKiller have no v2 file: `validate` warns.
pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    let limit = m.limit().unwrap_or(0);
    let swap_in = m.swap().unwrap_or(0);
    let swap = swap_to_v2(swap_in, limit).map_err(|reason| Error::Unsupported {
        resource: format!("{MEM}.swap"),
        reason,
    })?;
    // memory == memory+swap means "no swap": write 0, which num() drops.
    let swap_s = num(swap).or_else(|| (swap == 0 && swap_in > 0).then(|| "0".into()));
    if let Some(s) = swap_s {
        match fs::write("memory", dir, "memory.swap.max", &s) {
            // No swap on the host: "max" or "0" asks for nothing (runc).
            Err(Error::Write { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && (s == "max" || s == "0") => {}
            r => r.map_err(|e| missing_as(e, &format!("{MEM}.swap"), "memory"))?,
        }
    }
    if let Some(v) = num(limit) {
        write_res(MEM, "memory", dir, "memory.max", &v)?;
    }
    if let Some(v) = num(m.reservation().unwrap_or(0)) {
        write_res(
            &format!("{MEM}.reservation"),
            "memory",
            dir,
            "memory.low",
            &v,
        )?;
    }
    Ok(())
}

fn missing_as(e: Error, resource: &str, controller: &str) -> Error {
    match e {
        Error::Write {
            ref source,
            ref path,
            ..
        } if source.kind() == std::io::ErrorKind::NotFound => {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            Error::Unsupported {
                resource: resource.into(),
                reason: format!("the {controller} controller has no {file} on this host"),
            }
        }
        e => e,
    }
}

/// cpu.shares (OCI, v1 range 2..262144) to cpu.weight (1..10000), exactly as
/// runc's `ConvertCPUSharesToCgroupV2Value` since opencontainers/cgroups
/// v0.0.2 (runc 1.3): a quadratic in log2 that maps 2→1, 1024→100 (the two
/// defaults agree) and 262144→10000. The older linear formula mapped 1024 to
/// 39, far below the v2 default.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

const CPU: &str = "linux.resources.cpu";

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        return Err(Error::Unsupported {
            resource: format!("{CPU}.realtimeRuntime/realtimePeriod"),
            reason: "cgroup v2 has no realtime cpu limits".into(),
        });
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        let w = shares_to_weight(s).to_string();
        write_res(&format!("{CPU}.shares"), "cpu", dir, "cpu.weight", &w)?;
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
    if let Some(b) = c.burst() {
        write_res(
            &format!("{CPU}.burst"),
            "cpu",
            dir,
            "cpu.max.burst",
            &b.to_string(),
        )?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        // "$MAX $PERIOD": a quota <= 0 is "max"; the period is optional.
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".into()
        };
        if period != 0 {
            v = format!("{v} {period}");
        }
        write_res(&format!("{CPU}.quota"), "cpu", dir, "cpu.max", &v)?;
    }
    Ok(())
}

pub(super) fn pids(dir: &Path, p: &LinuxPids) -> Result<(), Error> {
    let v = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".into()
    };
    write_res("linux.resources.pids.limit", "pids", dir, "pids.max", &v)
}

/// blkio weight (10..1000) to io.weight (1..10000), runc's
/// `ConvertBlkIOToIOWeightValue`.
pub fn blkio_weight_to_io(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

const BLKIO: &str = "linux.resources.blockIO";

pub(super) fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    if b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some_and(|w| w != 0))
    {
        return Err(Error::Unsupported {
            resource: format!("{BLKIO}.leafWeight"),
            reason: "cgroup v2 has no leaf weights".into(),
        });
    }
    // BFQ takes the blkio numbers as they are; io.weight needs converting.
    let bfq = fs::exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let res = format!("{BLKIO}.weight");
        if bfq {
            write_res(&res, "io", dir, "io.bfq.weight", &w.to_string())?;
        } else {
            let v = blkio_weight_to_io(w).to_string();
            write_res(&res, "io", dir, "io.weight", &v)?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            let res = format!("{BLKIO}.weightDevice");
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io(w))
            };
            write_res(
                &res,
                "io",
                dir,
                file,
                &format!("{}:{} {v}", d.major(), d.minor()),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "wiops",
        ),
    ];
    for (name, list, key) in throttles {
        for t in list.iter().flatten() {
            let v = format!("{}:{} {key}={}", t.major(), t.minor(), t.rate());
            write_res(&format!("{BLKIO}.{name}"), "io", dir, "io.max", &v)?;
        }
    }
    Ok(())
}

pub(super) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), Error> {
    for l in limits {
        let res = format!("linux.resources.hugepageLimits[{}]", l.page_size());
        let v = l.limit().to_string();
        write_res(
            &res,
            "hugetlb",
            dir,
            &format!("hugetlb.{}.max", l.page_size()),
            &v,
        )?;
        // Reservations too where the kernel accounts them (runc, kernel 5.7+).
        let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
        if fs::exists(dir, &rsvd) {
            write_res(&res, "hugetlb", dir, &rsvd, &v)?;
        }
    }
    Ok(())
}

/// `linux.resources.unified`: file name → value, written as given (sorted,
/// so the outcome does not depend on hash order).
pub(super) fn unified(dir: &Path, kv: &HashMap<String, String>) -> Result<(), Error> {
    let mut keys: Vec<&String> = kv.keys().collect();
    keys.sort();
    for k in keys {
        check_unified_key(k)?;
        let ctrl = k.split('.').next().unwrap_or(k);
        let res = format!("linux.resources.unified[{k}]");
        write_res(&res, ctrl, dir, k, &kv[k])?;
    }
    Ok(())
}

pub(crate) fn check_unified_key(k: &str) -> Result<(), Error> {
    if k.is_empty() || k.contains('/') || !k.contains('.') || k.starts_with('.') {
        return Err(Error::Unsupported {
            resource: format!("linux.resources.unified[{k}]"),
            reason: "not a cgroup file name (controller.file)".into(),
        });
    }
    Ok(())
}

/// Make the controllers the leaf needs available to it: `+ctrl` into
/// cgroup.subtree_control of each ancestor, from the mount root down to the
/// leaf's parent (runc's `CreateCgroupPath`). The root is included because
/// nothing works below it otherwise, and the root is exempt from the
/// no-internal-processes rule. A non-root ancestor that holds processes
/// refuses (EBUSY); like runc we go on, one controller at a time, and the
/// resource that needs the missing controller then fails with an error that
/// names its file.
///
/// `only`: the one controller to enable (hybrid hosts), or all available.
pub(super) fn enable_controllers(
    mount: &Path,
    leaf: &Path,
    only: Option<&str>,
) -> Result<(), Error> {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return Ok(());
    };
    let mut dir = mount.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for comp in comps {
        let avail = fs::read("cgroup", &dir, "cgroup.controllers")?;
        let enabled = fs::read("cgroup", &dir, "cgroup.subtree_control")?;
        for c in avail.split_whitespace() {
            if only.is_some_and(|o| o != c) {
                continue;
            }
            // (A '+' is never read back from the kernel; the fake cgroupfs
            // of the unit tests keeps what was written.)
            if !enabled
                .split_whitespace()
                .any(|e| e.trim_start_matches('+') == c)
            {
                let _ = fs::write(c, &dir, "cgroup.subtree_control", &format!("+{c}"));
            }
        }
        dir = dir.join(comp);
    }
    Ok(())
}

/// Freeze and wait until cgroup.events says `frozen 1` (every task stopped).
pub(super) fn freeze(dir: &Path) -> Result<(), Error> {
    fs::write("freezer", dir, "cgroup.freeze", "1")?;
    wait_frozen(dir, true)
}

pub(super) fn thaw(dir: &Path) -> Result<(), Error> {
    fs::write("freezer", dir, "cgroup.freeze", "0")?;
    wait_frozen(dir, false)
}

fn wait_frozen(dir: &Path, want: bool) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(100);
    loop {
        let ev = fs::read_keyed("freezer", dir, "cgroup.events")?;
        if ev.get("frozen").map(|v| *v == 1) == Some(want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Freeze {
                path: dir.join("cgroup.events"),
                reason: format!("frozen did not become {} within 5s", u8::from(want)),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, Error> {
    Ok(fs::read("freezer", dir, "cgroup.freeze")?.trim() == "1")
}
