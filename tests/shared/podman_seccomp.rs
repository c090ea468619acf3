/// podman's default seccomp profile, in containers/common's format, converted
/// to OCI `linux.seccomp` the way podman does for its default capabilities on
/// amd64. Shared by the seccomp unit tests and tests/security.rs through
/// `include!` (one copy of the conversion).
pub mod podman_seccomp {
    use serde_json::{json, Value};

    pub const PROFILE: &str = "/usr/share/containers/seccomp.json";
    const CONTAINERS_CONF: &str = "/usr/share/containers/containers.conf";

    /// podman's default capabilities, from containers.conf (or podman 4's list).
    pub fn default_caps() -> Vec<String> {
        let conf = std::fs::read_to_string(CONTAINERS_CONF).unwrap_or_default();
        let caps: Vec<String> = conf
            .split_once("\ndefault_capabilities = [")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(list, _)| {
                list.split('"')
                    .skip(1)
                    .step_by(2)
                    .map(|c| format!("CAP_{c}"))
                    .collect()
            })
            .unwrap_or_default();
        if !caps.is_empty() {
            return caps;
        }
        [
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "FSETID",
            "KILL",
            "NET_BIND_SERVICE",
            "SETFCAP",
            "SETGID",
            "SETPCAP",
            "SETUID",
            "SYS_CHROOT",
        ]
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect()
    }

    pub fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The containers/common conversion: archMap for amd64, and each rule kept
    /// or dropped by its includes/excludes (arches, caps) as podman does.
    pub fn to_oci(p: &Value, caps: &[String]) -> Value {
        let arch = "amd64";
        let has = |c: &str| caps.iter().any(|x| x == c);
        let archs: Vec<&str> = p["archMap"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["architecture"] == "SCMP_ARCH_X86_64")
            .flat_map(|m| {
                std::iter::once(m["architecture"].as_str().unwrap())
                    .chain(strings(&m["subArchitectures"]))
            })
            .collect();
        let mut syscalls = Vec::new();
        for sc in p["syscalls"].as_array().unwrap() {
            let (inc, exc) = (&sc["includes"], &sc["excludes"]);
            if strings(&exc["arches"]).contains(&arch) || strings(&exc["caps"]).iter().any(|c| has(c)) {
                continue;
            }
            let inc_arches = strings(&inc["arches"]);
            if !inc_arches.is_empty() && !inc_arches.contains(&arch) {
                continue;
            }
            if !strings(&inc["caps"]).iter().all(|c| has(c)) {
                continue;
            }
            assert!(
                inc.get("minKernel").is_none_or(Value::is_null),
                "minKernel is not handled here"
            );
            let mut o = json!({"names": sc["names"], "action": sc["action"]});
            if let Some(e) = sc.get("errnoRet").filter(|e| !e.is_null()) {
                o["errnoRet"] = e.clone();
            }
            if let Some(args) = sc
                .get("args")
                .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
            {
                o["args"] = args.clone();
            }
            syscalls.push(o);
        }
        let mut oci =
            json!({"defaultAction": p["defaultAction"], "architectures": archs, "syscalls": syscalls});
        if let Some(e) = p.get("defaultErrnoRet").filter(|e| !e.is_null()) {
            oci["defaultErrnoRet"] = e.clone();
        }
        oci
    }
}
