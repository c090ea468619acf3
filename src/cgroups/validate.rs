//! The pure check before any side effect: can this host apply
//! `linux.resources`? Errors name the resource; things the runtime spec lets
//! a runtime ignore come back as warnings.
//!
//! Checks look at the hierarchy roots (mount points) only: a file that the
//! kernel shows at the root shows in every cgroup below it. Where a kernel
//! hides a file at the root (BFQ's blkio.bfq.weight), a sibling that the root
//! does show stands in for it.

use oci_spec::runtime::LinuxResources;

use super::manager::{no_controller, route, Target};
use super::paths::CgroupPaths;
use super::{fs, Error, Layout};

/// Check `r` against the host described by `p` (from `plan`). Returns the
/// warnings to print (kernelMemory, fields cgroup v2 has no file for).
pub fn validate(r: &LinuxResources, p: &CgroupPaths) -> Result<Vec<String>, Error> {
    let mut warn = Vec::new();
    let need = |res: &str, v1: &str, v2: Option<&str>| {
        route(p, v1, v2).ok_or_else(|| no_controller(res, v1, v2))
    };
    let unsupported = |resource: &str, reason: &str| Error::Unsupported {
        resource: resource.into(),
        reason: reason.into(),
    };
    if let Some(m) = r.memory() {
        if m.kernel().is_some() {
            warn.push("linux.resources.memory.kernel is ignored: kernel memory limits are gone from the kernel".into());
        }
        let t = need("linux.resources.memory", "memory", Some("memory"))?;
        match t {
            Target::V1(h) => {
                if m.swap().is_some_and(|s| s != 0)
                    && !fs::exists(&h.mount, "memory.memsw.limit_in_bytes")
                {
                    return Err(unsupported(
                        "linux.resources.memory.swap",
                        "the memory controller has no memory.memsw.limit_in_bytes on this host (swap accounting is off)",
                    ));
                }
                if let Some(s) = m.swappiness().filter(|s| *s > 100) {
                    return Err(unsupported(
                        "linux.resources.memory.swappiness",
                        &format!("{s} is out of range (0-100)"),
                    ));
                }
            }
            Target::V2(_) => {
                if m.swappiness().is_some() {
                    warn.push(
                        "linux.resources.memory.swappiness is ignored: cgroup v2 has no swappiness"
                            .into(),
                    );
                }
                if m.disable_oom_killer() == Some(true) {
                    warn.push("linux.resources.memory.disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer".into());
                }
                if m.kernel_tcp().is_some() {
                    warn.push("linux.resources.memory.kernelTCP is ignored on cgroup v2".into());
                }
                let (l, s) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
                super::v2::swap_to_v2(s, l)
                    .map_err(|e| unsupported("linux.resources.memory.swap", &e))?;
            }
        }
    }
    if let Some(c) = r.cpu() {
        let rt = c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0);
        let any = c.shares().is_some() || c.quota().is_some() || c.period().is_some() || rt;
        if any {
            match need("linux.resources.cpu", "cpu", Some("cpu"))? {
                Target::V1(h) if rt && !fs::exists(&h.mount, "cpu.rt_runtime_us") => {
                    return Err(unsupported(
                        "linux.resources.cpu.realtimeRuntime",
                        "the cpu controller has no cpu.rt_runtime_us on this host (no CONFIG_RT_GROUP_SCHED)",
                    ))
                }
                Target::V2(_) if rt => {
                    return Err(unsupported("linux.resources.cpu.realtimeRuntime", "cgroup v2 has no realtime cpu limits"))
                }
                _ => {}
            }
        }
        if c.cpus().is_some() || c.mems().is_some() {
            need("linux.resources.cpu.cpus/mems", "cpuset", Some("cpuset"))?;
        }
    }
    if r.pids().is_some() {
        need("linux.resources.pids", "pids", Some("pids"))?;
    }
    if let Some(b) = r.block_io() {
        let weight = b.weight().is_some_and(|w| w != 0)
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.weight().is_some_and(|w| w != 0));
        let leaf = b.leaf_weight().is_some_and(|w| w != 0)
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some_and(|w| w != 0));
        let throttle = [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|t| t.as_ref().is_some_and(|t| !t.is_empty()));
        if weight || leaf || throttle {
            match need("linux.resources.blockIO", "blkio", Some("io"))? {
                Target::V1(h) => {
                    let m = &h.mount;
                    let has_weight = [
                        "blkio.weight",
                        "blkio.bfq.weight",
                        "blkio.bfq.io_service_bytes",
                    ]
                    .iter()
                    .any(|f| fs::exists(m, f));
                    if weight && !has_weight {
                        return Err(unsupported(
                            "linux.resources.blockIO.weight",
                            "the blkio controller has no blkio.weight on this host",
                        ));
                    }
                    if leaf && !fs::exists(m, "blkio.leaf_weight") {
                        return Err(unsupported(
                            "linux.resources.blockIO.leafWeight",
                            "the blkio controller has no blkio.leaf_weight on this host",
                        ));
                    }
                    if throttle && !fs::exists(m, "blkio.throttle.read_bps_device") {
                        return Err(unsupported(
                            "linux.resources.blockIO.throttle*",
                            "the blkio controller has no blkio.throttle.* files on this host",
                        ));
                    }
                }
                Target::V2(_) if leaf => {
                    return Err(unsupported(
                        "linux.resources.blockIO.leafWeight",
                        "cgroup v2 has no leaf weights",
                    ))
                }
                Target::V2(_) => {}
            }
        }
    }
    for l in r.hugepage_limits().iter().flatten() {
        need("linux.resources.hugepageLimits", "hugetlb", Some("hugetlb"))?;
        if !valid_page_size(l.page_size()) {
            return Err(unsupported(
                &format!("linux.resources.hugepageLimits[{}]", l.page_size()),
                "a page size is a number and a unit: 2MB, 1GB, 64KB",
            ));
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() && !p.v1.contains_key("net_cls") {
            return Err(unsupported(
                "linux.resources.network.classID",
                "the net_cls controller (cgroup v1 only) is not mounted on this host",
            ));
        }
        if n.priorities().as_ref().is_some_and(|v| !v.is_empty()) && !p.v1.contains_key("net_prio")
        {
            return Err(unsupported(
                "linux.resources.network.priorities",
                "the net_prio controller (cgroup v1 only) is not mounted on this host",
            ));
        }
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        need("linux.resources.devices", "devices", None)?;
    }
    if r.rdma().as_ref().is_some_and(|d| !d.is_empty()) {
        warn.push(
            "linux.resources.rdma is ignored: husk does not manage the rdma controller".into(),
        );
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if p.unified.is_none() {
            return Err(unsupported(
                "linux.resources.unified",
                "needs cgroup v2, and this host has only cgroup v1",
            ));
        }
        check_unified_key(p, k)?;
    }
    Ok(warn)
}

/// A `unified` key is `controller.file`; on a hybrid host the controller must
/// be one the unified hierarchy hosts (or the core `cgroup.` files).
pub(crate) fn check_unified_key(p: &CgroupPaths, k: &str) -> Result<(), Error> {
    super::v2::check_unified_key(k)?;
    let ctrl = k.split('.').next().unwrap_or_default();
    let hosted = ctrl == "cgroup" || p.unified_controllers.iter().any(|c| c == ctrl);
    if !hosted {
        let why = if p.layout == Layout::Hybrid && p.v1.contains_key(ctrl) {
            format!("the {ctrl} controller is a cgroup v1 one on this hybrid host")
        } else {
            format!("the {ctrl} controller is not available in the cgroup v2 hierarchy")
        };
        return Err(Error::Unsupported {
            resource: format!("linux.resources.unified[{k}]"),
            reason: why,
        });
    }
    Ok(())
}

/// "2MB", "1GB", "64KB": digits then a unit, as the hugetlb files name them.
fn valid_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}
