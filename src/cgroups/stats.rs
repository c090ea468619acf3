//! Statistics in the shape of runc's `events --stats` (`types.Stats` of
//! runc's `types/events.go`): the CLI wraps them as
//! `{"type":"stats","id":…,"data":<Stats>}`. Each part comes from whichever
//! hierarchy hosts its controller; a controller missing on the host leaves
//! its part empty, as in runc.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::manager::{route, Target};
use super::paths::CgroupPaths;
use super::{fs, Error};

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(default, skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Blkio {
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// USER_HZ: cpuacct.stat counts in these ticks (fixed at 100 on Linux).
const NS_PER_TICK: u64 = 10_000_000;

pub(super) fn collect(p: &CgroupPaths) -> Result<Stats, Error> {
    let mut s = Stats::default();
    match route(p, "cpu", Some("cpu")) {
        Some(Target::V1(h)) => {
            let acct =
                p.v1.get("cpuacct")
                    .map_or(h.dir.as_path(), |a| a.dir.as_path());
            cpu_v1(&h.dir, acct, &mut s.cpu)?
        }
        Some(Target::V2(h)) => cpu_v2(&h.dir, &mut s.cpu)?,
        None => {}
    }
    match route(p, "memory", Some("memory")) {
        Some(Target::V1(h)) => memory_v1(&h.dir, &mut s.memory)?,
        Some(Target::V2(h)) => memory_v2(&h.dir, &mut s.memory)?,
        None => {}
    }
    if let Some(Target::V1(h) | Target::V2(h)) = route(p, "pids", Some("pids")) {
        s.pids.current = opt(fs::read_u64("pids", &h.dir, "pids.current"))?.unwrap_or(0);
        let max = opt(fs::read_u64("pids", &h.dir, "pids.max"))?.unwrap_or(0);
        s.pids.limit = if max == u64::MAX { 0 } else { max };
    }
    match route(p, "blkio", Some("io")) {
        Some(Target::V1(h)) => blkio_v1(&h.dir, &mut s.blkio)?,
        Some(Target::V2(h)) => io_v2(&h.dir, &mut s.blkio)?,
        None => {}
    }
    match route(p, "hugetlb", Some("hugetlb")) {
        Some(Target::V1(h)) => hugetlb(&h.dir, false, &mut s.hugetlb)?,
        Some(Target::V2(h)) => hugetlb(&h.dir, true, &mut s.hugetlb)?,
        None => {}
    }
    Ok(s)
}

/// A missing file is an absent statistic, not an error.
fn opt<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Read { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn keyed(ctrl: &str, dir: &Path, file: &str) -> Result<BTreeMap<String, u64>, Error> {
    Ok(opt(fs::read_keyed(ctrl, dir, file))?.unwrap_or_default())
}

fn num(ctrl: &str, dir: &Path, file: &str) -> Result<u64, Error> {
    Ok(opt(fs::read_u64(ctrl, dir, file))?.unwrap_or(0))
}

fn cpu_v1(cpu: &Path, acct: &Path, c: &mut Cpu) -> Result<(), Error> {
    c.usage.total = num("cpuacct", acct, "cpuacct.usage")?;
    if let Some(s) = opt(fs::read("cpuacct", acct, "cpuacct.usage_percpu"))? {
        c.usage.percpu = s
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    let st = keyed("cpuacct", acct, "cpuacct.stat")?;
    c.usage.user = st.get("user").copied().unwrap_or(0) * NS_PER_TICK;
    c.usage.kernel = st.get("system").copied().unwrap_or(0) * NS_PER_TICK;
    let t = keyed("cpu", cpu, "cpu.stat")?;
    c.throttling.periods = t.get("nr_periods").copied().unwrap_or(0);
    c.throttling.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
    c.throttling.throttled_time = t.get("throttled_time").copied().unwrap_or(0);
    Ok(())
}

fn cpu_v2(dir: &Path, c: &mut Cpu) -> Result<(), Error> {
    let t = keyed("cpu", dir, "cpu.stat")?;
    let us = |k: &str| t.get(k).copied().unwrap_or(0) * 1000;
    c.usage.total = us("usage_usec");
    c.usage.user = us("user_usec");
    c.usage.kernel = us("system_usec");
    c.throttling.periods = t.get("nr_periods").copied().unwrap_or(0);
    c.throttling.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
    c.throttling.throttled_time = us("throttled_usec");
    Ok(())
}

fn memory_v1(dir: &Path, m: &mut Memory) -> Result<(), Error> {
    let entry = |prefix: &str| -> Result<MemoryEntry, Error> {
        let f = |s: &str| num("memory", dir, &format!("{prefix}{s}"));
        Ok(MemoryEntry {
            limit: f("limit_in_bytes")?,
            usage: f("usage_in_bytes")?,
            max: f("max_usage_in_bytes")?,
            failcnt: f("failcnt")?,
        })
    };
    m.usage = entry("memory.")?;
    m.swap = entry("memory.memsw.")?;
    m.kernel = entry("memory.kmem.")?;
    m.kernel_tcp = entry("memory.kmem.tcp.")?;
    m.raw = keyed("memory", dir, "memory.stat")?;
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    Ok(())
}

fn memory_v2(dir: &Path, m: &mut Memory) -> Result<(), Error> {
    let ev = keyed("memory", dir, "memory.events")?;
    m.usage = MemoryEntry {
        limit: num("memory", dir, "memory.max")?,
        usage: num("memory", dir, "memory.current")?,
        max: num("memory", dir, "memory.peak")?,
        failcnt: ev.get("max").copied().unwrap_or(0),
    };
    // runc reports v2 swap as memory+swap, to look like v1's memsw.
    let swap_max = num("memory", dir, "memory.swap.max")?;
    m.swap = MemoryEntry {
        limit: swap_max.saturating_add(m.usage.limit),
        usage: num("memory", dir, "memory.swap.current")? + m.usage.usage,
        max: 0,
        failcnt: 0,
    };
    m.raw = keyed("memory", dir, "memory.stat")?;
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    Ok(())
}

/// Lines `8:0 Read 4096` and `Total 4096`.
fn blkio_file(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>, Error> {
    let Some(s) = opt(fs::read("blkio", dir, file))? else {
        return Ok(Vec::new());
    };
    Ok(s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, v] = f[..] else { return None };
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect())
}

fn blkio_v1(dir: &Path, b: &mut Blkio) -> Result<(), Error> {
    // CFQ's files where present; else BFQ's; else the throttle layer's,
    // which counts every I/O (runc's order).
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes = format!("{prefix}io_service_bytes_recursive");
        if fs::exists(dir, &bytes) {
            b.io_service_bytes_recursive = blkio_file(dir, &bytes)?;
            b.io_serviced_recursive = blkio_file(dir, &format!("{prefix}io_serviced_recursive"))?;
            return Ok(());
        }
    }
    Ok(())
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
fn io_v2(dir: &Path, b: &mut Blkio) -> Result<(), Error> {
    let Some(s) = opt(fs::read("io", dir, "io.stat"))? else {
        return Ok(());
    };
    for l in s.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    Ok(())
}

/// Page sizes from the files the hugetlb controller shows (`hugetlb.2MB.*`).
fn hugetlb(dir: &Path, v2: bool, out: &mut BTreeMap<String, Hugetlb>) -> Result<(), Error> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let usage_suffix = if v2 { ".current" } else { ".usage_in_bytes" };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(usage_suffix))
        else {
            continue;
        };
        if size.contains('.') {
            continue; // hugetlb.2MB.rsvd.current
        }
        let f = |s: &str| num("hugetlb", dir, &format!("hugetlb.{size}.{s}"));
        let h = if v2 {
            let ev = keyed("hugetlb", dir, &format!("hugetlb.{size}.events"))?;
            Hugetlb {
                usage: f("current")?,
                max: 0,
                failcnt: ev.get("max").copied().unwrap_or(0),
            }
        } else {
            Hugetlb {
                usage: f("usage_in_bytes")?,
                max: f("max_usage_in_bytes")?,
                failcnt: f("failcnt")?,
            }
        };
        out.insert(size.to_string(), h);
    }
    Ok(())
}
