//! The host side of a VM container's `create`, before the clone: the
//! initramfs written into the state dir, the plan the VMM process follows,
//! and the spec as the VMM process itself is set up by the namespace
//! backend.

use super::channel::{self, AgentConfig};
use super::guest;
use super::settings::VmSettings;
use super::VmConfig;
use crate::spec::{Bundle, LinuxNamespaceType as NsT};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Files of a VM container in its state dir.
pub const INITRAMFS: &str = "initramfs.cpio";
pub const CONSOLE_LOG: &str = "console.log";
/// Where the VMM listens for `husk exec`.
pub const EXEC_SOCK: &str = "vm.sock";
/// How long `create` waits for the guest agent's Ready.
pub const READY_WITHIN: Duration = Duration::from_secs(10);

/// What the VMM process does, decided before the clone.
#[derive(Debug, Clone)]
pub struct Plan {
    pub vm: VmConfig,
    pub exec_sock: PathBuf,
    pub ready_within: Duration,
}

pub struct Prepared {
    /// The bundle the namespace backend sets the VMM process up from.
    pub bundle: Bundle,
    pub plan: Plan,
}

/// Writes the initramfs (rootfs, file binds, agent and its config) and
/// plans the VM.
pub fn prepare(s: &VmSettings, bundle: &Bundle, state_dir: &Path) -> Result<Prepared, String> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().ok_or("process: missing")?;
    let config = AgentConfig {
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        process: process_from_oci(process),
    };
    let initramfs = state_dir.join(INITRAMFS);
    guest::write_initramfs(&initramfs, &bundle.rootfs, &s.agent, &config, &s.binds)
        .map_err(|e| format!("initramfs {}: {e}", initramfs.display()))?;
    let vm = VmConfig {
        kernel: s.kernel.clone(),
        initramfs: Some(initramfs),
        cmdline: guest::kernel_cmdline(s.cmdline_extra.as_deref()),
        memory_mib: s.memory_mib,
        console_log: state_dir.join(CONSOLE_LOG),
    };
    Ok(Prepared {
        bundle: vmm_bundle(bundle),
        plan: Plan {
            vm,
            exec_sock: state_dir.join(EXEC_SOCK),
            ready_within: READY_WITHIN,
        },
    })
}

/// The spec as it applies to the VMM process: its namespaces and cgroups,
/// its oom_score_adj, but no pid or time namespace (the workload's pids
/// and clocks are the guest's; a VMM that were pid 1 of a namespace could
/// not re-raise the signal that killed the container) and no rlimits (the
/// agent applies them in the guest, where raising them is allowed).
fn vmm_bundle(bundle: &Bundle) -> Bundle {
    let mut b = bundle.clone();
    if let Some(linux) = b.spec.linux_mut() {
        if let Some(ns) = linux.namespaces_mut() {
            ns.retain(|n| !matches!(n.typ(), NsT::Pid | NsT::Time));
        }
    }
    if let Some(p) = b.spec.process_mut() {
        p.set_rlimits(None);
        p.set_capabilities(None);
    }
    b
}

/// The process part of the OCI spec, as the agent applies it in the guest.
pub fn process_from_oci(p: &oci_spec::runtime::Process) -> channel::Process {
    let u = p.user();
    channel::Process {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().to_string_lossy().into_owned(),
        uid: u.uid(),
        gid: u.gid(),
        additional_gids: u.additional_gids().clone().unwrap_or_default(),
        umask: u.umask(),
        terminal: p.terminal().unwrap_or(false),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .map(|r| channel::Rlimit {
                kind: crate::spec::validate::rlimit_name(r.typ()),
                soft: r.soft(),
                hard: r.hard(),
            })
            .collect(),
    }
}
