//! process.rlimits. Checked against the host before any side effect: a hard
//! limit above ours needs CAP_SYS_RESOURCE, which root here lacks.

use crate::spec::validate::rlimit_name;
use oci_spec::runtime::PosixRlimit;

fn resource(r: &PosixRlimit) -> libc::c_int {
    // PosixRlimitType's discriminants are not the kernel's; map by name.
    let name = rlimit_name(r.typ());
    (match name.as_str() {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return -1,
    }) as libc::c_int
}

fn has_sys_resource() -> bool {
    crate::sys::proc::has_cap(24) // CAP_SYS_RESOURCE
}

/// Refuse, before anything is created, a hard limit this host cannot grant.
pub fn preflight(limits: &[PosixRlimit]) -> Result<(), String> {
    if has_sys_resource() {
        return Ok(());
    }
    for r in limits {
        let res = resource(r);
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a local struct.
        if unsafe { libc::getrlimit(res as _, &mut cur) } != 0 {
            continue;
        }
        if r.hard() > cur.rlim_max {
            return Err(format!(
                "process.rlimits: {} hard limit {} is above this host's {} and raising it needs CAP_SYS_RESOURCE",
                rlimit_name(r.typ()),
                r.hard(),
                cur.rlim_max
            ));
        }
    }
    Ok(())
}

pub fn apply(limits: &[PosixRlimit]) -> Result<(), String> {
    for r in limits {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit from a local struct.
        if unsafe { libc::setrlimit(resource(r) as _, &lim) } != 0 {
            return Err(format!(
                "process.rlimits: {} soft {} hard {}: {}",
                rlimit_name(r.typ()),
                r.soft(),
                r.hard(),
                nix::errno::Errno::last().desc()
            ));
        }
    }
    Ok(())
}
