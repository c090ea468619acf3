//! Which containers run in a microVM, and with what: the `dev.husk.vm*`
//! annotations (or husk invoked as `husk-vm`), checked before `create`
//! has any side effect. Every error names the annotation (or variable)
//! and the path it was about.

use super::guest::FileBind;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

pub const VM: &str = "dev.husk.vm";
pub const MEMORY: &str = "dev.husk.vm.memory_mib";
pub const KERNEL: &str = "dev.husk.vm.kernel";
pub const AGENT: &str = "dev.husk.vm.agent";
pub const CMDLINE_EXTRA: &str = "dev.husk.vm.cmdline_extra";
pub const VCPUS: &str = "dev.husk.vm.vcpus";

/// The name of the link that selects the VM sandbox for every container.
pub const VM_ARGV0: &str = "husk-vm";
pub const KERNEL_ENV: &str = "HUSK_VM_KERNEL";
pub const KERNEL_DEFAULT: &str = "/usr/lib/husk/vmlinuz";
pub const AGENT_ENV: &str = "HUSK_AGENT";
pub const AGENT_DEFAULT: &str = "/usr/lib/husk/husk-agent";

/// The smallest guest: the stock kernel alone needs ~54 MiB to decompress.
pub const MIN_MEMORY_MIB: u64 = 128;
pub const DEFAULT_MEMORY_MIB: u64 = 256;
/// What the VMM itself holds beside guest RAM (binary, stacks, buffers),
/// taken off a memory limit before the rest becomes guest RAM.
pub const VMM_OVERHEAD_MIB: u64 = 64;

/// The annotations husk reads, for `husk features`.
pub const ANNOTATIONS: [(&str, &str); 6] = [
    (VM, "\"true\": run this container in its own KVM microVM (also: husk invoked as husk-vm)"),
    (MEMORY, "guest RAM in MiB (default: linux.resources.memory.limit minus 64 MiB, else 256; at least 128)"),
    (KERNEL, "guest kernel bzImage (default: $HUSK_VM_KERNEL, else /usr/lib/husk/vmlinuz)"),
    (AGENT, "static husk-agent, the guest's /init (default: $HUSK_AGENT, else husk-agent beside husk, else /usr/lib/husk/husk-agent)"),
    (CMDLINE_EXTRA, "appended to the guest kernel command line"),
    (VCPUS, "number of vCPUs; only 1 is supported"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    pub kernel: PathBuf,
    pub agent: PathBuf,
    pub memory_mib: u64,
    pub cmdline_extra: Option<String>,
    /// The spec's file bind mounts, copied into the initramfs.
    pub binds: Vec<FileBind>,
}

/// Where settings come from besides the spec (so tests can fake them).
pub struct Host<'a> {
    /// husk was invoked through a link named `husk-vm`.
    pub invoked_as_vm: bool,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The directory of the husk binary (the agent's default home).
    pub exe_dir: Option<PathBuf>,
}

impl Host<'static> {
    pub fn current() -> Host<'static> {
        let argv0 = std::env::args_os().next().unwrap_or_default();
        Host {
            invoked_as_vm: Path::new(&argv0).file_name() == Some(VM_ARGV0.as_ref()),
            env: &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
            exe_dir: crate::sys::exe::original().and_then(|p| p.parent().map(Path::to_path_buf)),
        }
    }
}

/// `None`: the namespace sandbox. `Some`: the VM sandbox, every setting
/// checked.
pub fn from_spec(spec: &Spec, host: &Host) -> Result<Option<VmSettings>, String> {
    let empty = Default::default();
    let ann = spec.annotations().as_ref().unwrap_or(&empty);
    let get = |k: &str| ann.get(k).map(|v| v.trim());
    let selected = match get(VM) {
        Some("true") => true,
        Some("false") => false,
        None => host.invoked_as_vm,
        Some(v) => return Err(format!("{VM} {v:?}: want \"true\" or \"false\"")),
    };
    if !selected {
        return Ok(None);
    }
    if let Some(v) = get(VCPUS) {
        match v.parse::<u32>() {
            Ok(1) => {}
            Ok(n) => {
                return Err(format!(
                "{VCPUS} {n}: only 1 vCPU is supported (SMP needs ACPI MADT tables, not built yet)"
            ))
            }
            Err(_) => return Err(format!("{VCPUS} {v:?}: not a number")),
        }
    }
    let memory_mib = memory(get(MEMORY), memory_limit(spec))?;
    let kernel = kernel(get(KERNEL), host)?;
    let agent = agent(get(AGENT), host)?;
    let cmdline_extra = get(CMDLINE_EXTRA)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(Some(VmSettings {
        kernel,
        agent,
        memory_mib,
        cmdline_extra,
        binds: file_binds(spec)?,
    }))
}

fn memory_limit(spec: &Spec) -> Option<i64> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .memory()
        .as_ref()?
        .limit()
        .filter(|l| *l > 0)
}

fn memory(ann: Option<&str>, limit: Option<i64>) -> Result<u64, String> {
    let room = limit.map(|l| (l as u64 >> 20).saturating_sub(VMM_OVERHEAD_MIB));
    let mib = match ann {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| format!("{MEMORY} {v:?}: not a number of MiB"))?,
        None => room.unwrap_or(DEFAULT_MEMORY_MIB),
    };
    let field = if ann.is_some() {
        MEMORY
    } else {
        "linux.resources.memory.limit"
    };
    if mib < MIN_MEMORY_MIB {
        return Err(format!(
            "{field}: a guest of {mib} MiB is below the {MIN_MEMORY_MIB} MiB minimum (the kernel alone needs ~54 MiB to decompress)"
        ));
    }
    if let (Some(room), Some(_)) = (room, ann) {
        if mib > room {
            return Err(format!(
                "{MEMORY} {mib}: more than linux.resources.memory.limit minus {VMM_OVERHEAD_MIB} MiB for the VMM ({room} MiB)"
            ));
        }
    }
    Ok(mib)
}

fn regular_file(what: &str, p: &Path) -> Result<PathBuf, String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Ok(p.to_path_buf()),
        Ok(_) => Err(format!("{what} {}: not a regular file", p.display())),
        Err(e) => Err(format!(
            "{what} {}: {}",
            p.display(),
            crate::spec::io_msg(&e)
        )),
    }
}

fn kernel(ann: Option<&str>, host: &Host) -> Result<PathBuf, String> {
    if let Some(p) = ann {
        return regular_file(KERNEL, Path::new(p));
    }
    if let Some(p) = (host.env)(KERNEL_ENV) {
        return regular_file(KERNEL_ENV, Path::new(&p));
    }
    if Path::new(KERNEL_DEFAULT).is_file() {
        return Ok(KERNEL_DEFAULT.into());
    }
    Err(format!(
        "{KERNEL}: no guest kernel: the annotation is not set, neither is ${KERNEL_ENV}, and {KERNEL_DEFAULT} does not exist"
    ))
}

fn agent(ann: Option<&str>, host: &Host) -> Result<PathBuf, String> {
    if let Some(p) = ann {
        return regular_file(AGENT, Path::new(p));
    }
    if let Some(p) = (host.env)(AGENT_ENV) {
        return regular_file(AGENT_ENV, Path::new(&p));
    }
    let beside = host.exe_dir.as_ref().map(|d| d.join("husk-agent"));
    for p in beside
        .iter()
        .map(PathBuf::as_path)
        .chain([Path::new(AGENT_DEFAULT)])
    {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
    }
    Err(format!(
        "{AGENT}: no husk-agent: the annotation is not set, neither is ${AGENT_ENV}, and none is beside husk or at {AGENT_DEFAULT}"
    ))
}

/// The spec's bind mounts of files; a directory bind is an error (no
/// shared filesystem yet), except /dev/shm, which the guest has its own of.
fn file_binds(spec: &Spec) -> Result<Vec<FileBind>, String> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        let opts = crate::spec::mounts::parse(
            m.options().as_deref().unwrap_or(&[]),
            m.typ().as_deref().unwrap_or(""),
            &field,
        )
        .map_err(|e| e.to_string())?;
        if !opts.is_bind() && m.typ().as_deref() != Some("bind") {
            continue;
        }
        let Some(src) = m.source() else { continue };
        let dst = m.destination().to_string_lossy().into_owned();
        let md = std::fs::metadata(src).map_err(|e| {
            format!(
                "{field} source {}: {}",
                src.display(),
                crate::spec::io_msg(&e)
            )
        })?;
        if md.is_dir() {
            if dst == "/dev/shm" {
                continue;
            }
            return Err(format!(
                "{field} {} on {dst}: directory bind mounts are not supported in a microVM yet (needs virtio-fs or virtio-blk); only files are copied in",
                src.display()
            ));
        }
        out.push(FileBind {
            host: src.clone(),
            guest: dst,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
