//! Validate the whole spec before the first side effect. Every error names
//! its field.

use super::mounts;
use super::Error;
use oci_spec::runtime::{LinuxNamespaceType as NsT, Process, Spec};
use std::collections::HashSet;
use std::path::Path;

pub fn validate_spec(spec: &Spec) -> Result<(), Error> {
    version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::field("process", "missing: the container needs a process"))?;
    validate_process(process, "process")?;
    namespaces(spec)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        if !m.destination().is_absolute() {
            return Err(Error::field(
                format!("{field}.destination"),
                format!("{:?} must be an absolute path", m.destination()),
            ));
        }
        nul_free(m.destination(), &format!("{field}.destination"))?;
        if let Some(src) = m.source() {
            nul_free(src, &format!("{field}.source"))?;
        }
        let typ = m.typ().as_deref().unwrap_or("");
        let opts = mounts::parse(m.options().as_deref().unwrap_or(&[]), typ, &field)?;
        if opts.is_bind() && m.source().is_none() {
            return Err(Error::field(
                format!("{field}.source"),
                "a bind mount needs a source",
            ));
        }
        if !opts.is_bind() && typ.is_empty() {
            return Err(Error::field(
                format!("{field}.type"),
                "missing (and not a bind mount)",
            ));
        }
    }
    for (field, v) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if v.as_deref().is_some_and(|h| h.contains('\0')) {
            return Err(Error::field(field, "contains a NUL byte"));
        }
    }
    let has = |t| super::has_namespace(spec, t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(NsT::Uts) {
        return Err(Error::field(
            "hostname",
            "setting the hostname needs a new uts namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(NsT::Uts) {
        return Err(Error::field(
            "domainname",
            "setting the domainname needs a new uts namespace",
        ));
    }
    if let Some(linux) = spec.linux() {
        for (k, _) in linux.sysctl().iter().flatten() {
            sysctl(k, &has)?;
        }
        if let Some(p) = linux.rootfs_propagation() {
            if !p.is_empty() && mounts::propagation_flag(p).is_none() {
                return Err(Error::field(
                    "linux.rootfsPropagation",
                    format!("unknown value {p:?}"),
                ));
            }
        }
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            if !d.path().is_absolute() {
                return Err(Error::field(
                    format!("linux.devices[{i}].path"),
                    "must be an absolute path",
                ));
            }
            nul_free(d.path(), &format!("linux.devices[{i}].path"))?;
        }
        let unsupported = [
            ("linux.intelRdt", linux.intel_rdt().is_some()),
            ("linux.personality", linux.personality().is_some()),
        ];
        for (field, set) in unsupported {
            if set {
                return Err(Error::field(field, "not supported by husk yet"));
            }
        }
        if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !has(NsT::Time) {
            return Err(Error::field(
                "linux.timeOffsets",
                "needs a new time namespace",
            ));
        }
        if linux
            .mount_label()
            .as_deref()
            .is_some_and(|l| !l.is_empty())
            && !lsm_active("selinux")
        {
            return Err(Error::field(
                "linux.mountLabel",
                "SELinux is not enabled on this host",
            ));
        }
    }
    for (name, hooks) in hook_lists(spec) {
        for (i, h) in hooks.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(Error::field(
                    format!("hooks.{name}[{i}].path"),
                    "must be an absolute path",
                ));
            }
            nul_free(h.path(), &format!("hooks.{name}[{i}].path"))?;
            for (what, list) in [("args", h.args()), ("env", h.env())] {
                if list.iter().flatten().any(|a| a.contains('\0')) {
                    return Err(Error::field(
                        format!("hooks.{name}[{i}].{what}"),
                        "contains a NUL byte",
                    ));
                }
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::field(
                    format!("hooks.{name}[{i}].timeout"),
                    "must be positive",
                ));
            }
        }
    }
    Ok(())
}

/// Accept any 1.x, pre-releases included (podman writes 1.0.2-dev).
fn version(v: &str) -> Result<(), Error> {
    let major = v.split('.').next().unwrap_or("");
    if major != "1" || v.split('.').count() < 2 {
        return Err(Error::field(
            "ociVersion",
            format!("{v:?} is not a supported version (want 1.x)"),
        ));
    }
    Ok(())
}

fn namespaces(spec: &Spec) -> Result<(), Error> {
    let mut seen = HashSet::new();
    let list = super::namespaces(spec);
    for (i, ns) in list.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        if !seen.insert(ns.typ()) {
            return Err(Error::field(
                field,
                format!("namespace {} listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if let Err(e) = std::fs::metadata(p) {
                return Err(Error::field(
                    format!("{field}.path"),
                    format!("{}: {}", p.display(), super::io_msg(&e)),
                ));
            }
        }
    }
    let linux = spec.linux().as_ref();
    let maps = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    let new_user = list
        .iter()
        .any(|n| n.typ() == NsT::User && n.path().is_none());
    if maps && !new_user {
        return Err(Error::field(
            "linux.uidMappings",
            "id mappings need a new user namespace",
        ));
    }
    if new_user {
        for (name, m) in [
            (
                "linux.uidMappings",
                linux.and_then(|l| l.uid_mappings().clone()),
            ),
            (
                "linux.gidMappings",
                linux.and_then(|l| l.gid_mappings().clone()),
            ),
        ] {
            if m.as_ref().is_none_or(|m| m.is_empty()) {
                return Err(Error::field(name, "a new user namespace needs id mappings"));
            }
        }
    }
    Ok(())
}

/// runc's rules: which sysctls a container may set, given its namespaces.
fn sysctl(key: &str, has: &dyn Fn(NsT) -> bool) -> Result<(), Error> {
    let field = format!("linux.sysctl.{key}");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if !has(NsT::Ipc) {
            return Err(Error::field(field, "needs a new ipc namespace"));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !has(NsT::Network) {
            return Err(Error::field(field, "needs a new network namespace"));
        }
        return Ok(());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Err(Error::field(
            field,
            "set it with the hostname/domainname fields instead",
        ));
    }
    Err(Error::field(
        field,
        "not namespaced: a container may not set it",
    ))
}

pub fn validate_process(p: &Process, field: &str) -> Result<(), Error> {
    let args = p.args().as_deref().unwrap_or(&[]);
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::field(format!("{field}.args"), "must name a program"));
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err(Error::field(
                format!("{field}.args[{i}]"),
                "contains a NUL byte",
            ));
        }
    }
    if !p.cwd().is_absolute() {
        return Err(Error::field(
            format!("{field}.cwd"),
            format!("{:?} must be an absolute path", p.cwd()),
        ));
    }
    nul_free(p.cwd(), &format!("{field}.cwd"))?;
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') || e.contains('\0') {
            return Err(Error::field(
                format!("{field}.env[{i}]"),
                format!("{e:?} is not KEY=value"),
            ));
        }
    }
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        if r.soft() > r.hard() {
            return Err(Error::field(
                format!("{field}.rlimits[{i}]"),
                format!(
                    "{}: soft limit {} exceeds hard limit {}",
                    rlimit_name(r.typ()),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
    }
    if let Some(profile) = p.apparmor_profile() {
        if !profile.is_empty() && !lsm_active("apparmor") {
            return Err(Error::field(
                format!("{field}.apparmorProfile"),
                "AppArmor is not enabled on this host",
            ));
        }
    }
    if let Some(label) = p.selinux_label() {
        if !label.is_empty() && !lsm_active("selinux") {
            return Err(Error::field(
                format!("{field}.selinuxLabel"),
                "SELinux is not enabled on this host",
            ));
        }
    }
    let unsupported = [
        ("ioPriority", p.io_priority().is_some()),
        ("scheduler", p.scheduler().is_some()),
        ("execCPUAffinity", p.exec_cpu_affinity().is_some()),
    ];
    for (name, set) in unsupported {
        if set {
            return Err(Error::field(
                format!("{field}.{name}"),
                "not supported by husk yet",
            ));
        }
    }
    Ok(())
}

pub fn rlimit_name(t: oci_spec::runtime::PosixRlimitType) -> String {
    // Serialized form is the spec's name, e.g. "RLIMIT_NOFILE".
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{t:?}"))
}

fn nul_free(p: &Path, field: &str) -> Result<(), Error> {
    if p.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(Error::field(field, "contains a NUL byte"));
    }
    Ok(())
}

fn hook_lists(spec: &Spec) -> Vec<(&'static str, Vec<oci_spec::runtime::Hook>)> {
    let Some(h) = spec.hooks() else { return vec![] };
    #[allow(deprecated)]
    let prestart = h.prestart().clone();
    vec![
        ("prestart", prestart.unwrap_or_default()),
        (
            "createRuntime",
            h.create_runtime().clone().unwrap_or_default(),
        ),
        (
            "createContainer",
            h.create_container().clone().unwrap_or_default(),
        ),
        (
            "startContainer",
            h.start_container().clone().unwrap_or_default(),
        ),
        ("poststart", h.poststart().clone().unwrap_or_default()),
        ("poststop", h.poststop().clone().unwrap_or_default()),
    ]
}

fn lsm_active(name: &str) -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|s| s.split(',').any(|l| l.trim() == name))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Spec, Error> {
        let s: Spec = crate::spec::parse_json(Path::new("config.json"), json.as_bytes())?;
        validate_spec(&s)?;
        Ok(s)
    }

    const BASE: &str =
        r#""root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}"#;

    #[test]
    fn accepts_prerelease_versions() {
        spec(&format!(r#"{{"ociVersion":"1.0.2-dev",{BASE}}}"#)).unwrap();
        spec(&format!(
            r#"{{"ociVersion":"1.2.0",{BASE},"unknownThing":{{"x":1}}}}"#
        ))
        .unwrap();
        let e = spec(&format!(r#"{{"ociVersion":"2.0.0",{BASE}}}"#)).unwrap_err();
        assert!(e.to_string().starts_with("ociVersion: "), "{e}");
    }

    #[test]
    fn names_the_bad_field() {
        let e = spec(r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":["sh"],"user":{"uid":"x","gid":0}}}"#).unwrap_err();
        assert!(e.to_string().contains("process.user.uid"), "{e}");
        let e = spec(&format!(
            r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"namespaces":[{{"type":"bogus"}}]}}}}"#
        ))
        .unwrap_err();
        assert!(e.to_string().contains("linux.namespaces[0].type"), "{e}");
        let e = spec(&format!(r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"namespaces":[{{"type":"pid"}},{{"type":"pid"}}]}}}}"#)).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = spec(&format!(
            r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"namespaces":[{{"type":"net","path":"/nonexistent/ns"}}]}}}}"#
        ));
        assert!(e.is_err());
    }

    #[test]
    fn sysctl_needs_its_namespace() {
        let e = spec(&format!(
            r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"sysctl":{{"net.ipv4.ip_forward":"1"}}}}}}"#
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.sysctl.net.ipv4.ip_forward: needs a new network namespace"
        );
        spec(&format!(r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"namespaces":[{{"type":"network"}}],"sysctl":{{"net.ipv4.ip_forward":"1"}}}}}}"#)).unwrap();
        let e = spec(&format!(r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"namespaces":[{{"type":"network"}}],"sysctl":{{"vm.swappiness":"1"}}}}}}"#)).unwrap_err();
        assert!(e.to_string().contains("not namespaced"));
    }

    #[test]
    fn process_checks() {
        let e = spec(r#"{"ociVersion":"1.0.0","process":{"cwd":"rel","args":["sh"],"user":{"uid":0,"gid":0}}}"#).unwrap_err();
        assert!(e.to_string().starts_with("process.cwd:"), "{e}");
        let e = spec(
            r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":[],"user":{"uid":0,"gid":0}}}"#,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "process.args: must name a program");
        let e = spec(r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":["x"],"user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":5}]}}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("RLIMIT_NOFILE: soft limit 10 exceeds hard limit 5"),
            "{e}"
        );
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let e = spec(&format!(
            r#"{{"ociVersion":"1.0.0",{BASE},"linux":{{"namespaces":[{{"type":"user"}}]}}}}"#
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("linux.uidMappings"), "{e}");
    }
}
