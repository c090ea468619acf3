//! `spec`, `features`, and the unsupported commands.

use super::out;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(Debug)]
pub struct SpecArgs {
    /// Where to write config.json
    pub bundle: PathBuf,
    /// A spec for a rootless container
    pub rootless: bool,
}

/// runc's default config.json (`runc spec`).
pub const DEFAULT_SPEC: &str = include_str!("default-spec.json");

pub fn spec(a: &SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("{}: already exists; remove it first", path.display());
    }
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT_SPEC)?;
    if a.rootless {
        rootless(&mut v);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(0)
}

/// As `runc spec --rootless`: a user namespace mapping our ids, no network
/// namespace, /sys bound from the host, no cgroup resources.
fn rootless(v: &mut serde_json::Value) {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let linux = &mut v["linux"];
    linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(serde_json::json!({"type": "user"}));
    }
    if let Some(r) = linux.as_object_mut() {
        r.remove("resources");
    }
    if let Some(m) = v["mounts"].as_array_mut() {
        m.retain(|m| m["type"] != "cgroup");
        for x in m.iter_mut() {
            if x["destination"] == "/sys" {
                *x = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if x["destination"] == "/dev/pts" || x["destination"] == "/dev/mqueue" {
                if let Some(o) = x["options"].as_array_mut() {
                    o.retain(|o| !o.as_str().is_some_and(|s| s.starts_with("gid=")));
                }
            }
        }
    }
}

/// The OCI features document (runtime-spec features.md).
pub fn features() -> Result<i32> {
    let mount_options = [
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rro",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "unbindable",
    ];
    let caps: Vec<String> = caps::all()
        .into_iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "org.opencontainers.runc.checkpoint.enabled".into(),
        "false".into(),
    );
    for (k, v) in crate::sandbox::vm::settings::ANNOTATIONS {
        annotations.insert(k.into(), v.into());
    }
    let doc = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options.to_vec(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": annotations
    });
    out!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
