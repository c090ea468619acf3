//! The five capability sets. Bounding is dropped before the user switch
//! (it needs CAP_SETPCAP), the rest are set with one capset(2) after it.
//! Inheritable stays empty unless the spec sets it (CVE-2022-29162).
//! A capability this host's bounding set lacks (here: CAP_SYS_RESOURCE) is
//! clipped with a warning, as is one the kernel does not know.

use crate::sys::{check, Context, Result};
use oci_spec::runtime::{Capability, LinuxCapabilities};
use std::collections::HashSet;

/// Capability sets as bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn cap_index(c: &Capability) -> Option<u8> {
    let name = serde_json::to_value(c).ok()?.as_str()?.to_string();
    name.parse::<caps::Capability>().ok().map(|c| c.index())
}

fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Our own bounding set: what we can hand on at all.
fn own_bounding() -> u64 {
    crate::sys::proc::own_caps().1
}

/// Resolve the spec's names into masks clipped to what this host allows;
/// returns the warnings to log.
pub fn resolve(c: Option<&LinuxCapabilities>) -> (Sets, Vec<String>) {
    let last = last_cap();
    let allowed = own_bounding();
    let mut warnings = HashSet::new();
    let mut mask = |set: &Option<HashSet<Capability>>| -> u64 {
        let mut m = 0u64;
        for cap in set.iter().flatten() {
            match cap_index(cap) {
                Some(i) if i <= last && allowed & (1 << i) != 0 => m |= 1 << i,
                _ => {
                    warnings.insert(format!(
                        "capability {cap} is not available on this host: dropped"
                    ));
                }
            }
        }
        m
    };
    let Some(c) = c else {
        return (Sets::default(), vec![]);
    };
    let sets = Sets {
        bounding: mask(c.bounding()),
        effective: mask(c.effective()),
        permitted: mask(c.permitted()),
        inheritable: mask(c.inheritable()),
        ambient: mask(c.ambient()),
    };
    let mut w: Vec<String> = warnings.into_iter().collect();
    w.sort();
    (sets, w)
}

/// Drop every capability not in `bounding` from the bounding set.
pub fn drop_bounding(bounding: u64) -> Result<()> {
    for i in 0..=last_cap() {
        if bounding & (1 << i) == 0 {
            // SAFETY: prctl with integer arguments.
            check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, i as libc::c_ulong, 0, 0, 0) } as _)
                .with_ctx(|| format!("drop capability {i} from the bounding set"))?;
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set effective, permitted and inheritable in one capset(2), then raise
/// the ambient ones.
pub fn apply(s: &Sets) -> Result<()> {
    let hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    let (e0, e1) = split(s.effective);
    let (p0, p1) = split(s.permitted);
    let (i0, i1) = split(s.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and two data structs as capset(2) v3 expects.
    check(unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) })
        .ctx("process.capabilities: capset")?;
    for i in 0..64u64 {
        if s.ambient & (1 << i) != 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    i as libc::c_ulong,
                    0,
                    0,
                )
            };
            // As runc: an ambient capability that is not also inheritable
            // and permitted cannot be raised; warn and go on.
            if r != 0 {
                log::debug!("process.capabilities.ambient: cannot raise capability {i} (not inheritable): skipped");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_to_bits() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}"#,
        )
        .unwrap();
        let (s, _) = resolve(Some(&c));
        assert_eq!(s.bounding, (1 << 0) | (1 << 5));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.inheritable, 0, "inheritable stays empty unless asked");
    }
}
