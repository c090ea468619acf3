use super::*;

fn spec(ann: &[(&str, &str)], extra: serde_json::Value) -> Spec {
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "annotations": ann.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>(),
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn host(as_vm: bool) -> Host<'static> {
    Host {
        invoked_as_vm: as_vm,
        env: &|_| None,
        exe_dir: None,
    }
}

/// A regular file that exists everywhere tests run.
const FILE: &str = "/proc/self/exe";

fn err(ann: &[(&str, &str)]) -> String {
    from_spec(&spec(ann, serde_json::json!({})), &host(false)).unwrap_err()
}

#[test]
fn not_selected_is_the_namespace_sandbox() {
    let s = spec(&[(MEMORY, "64")], serde_json::json!({}));
    assert_eq!(from_spec(&s, &host(false)).unwrap(), None);
    let s = spec(&[(VM, "false")], serde_json::json!({}));
    assert_eq!(from_spec(&s, &host(true)).unwrap(), None);
    assert!(err(&[(VM, "yes")]).starts_with("dev.husk.vm \"yes\""));
}

#[test]
fn selected_by_annotation_or_argv0() {
    let ok = [(VM, "true"), (KERNEL, FILE), (AGENT, FILE)];
    let s = from_spec(&spec(&ok, serde_json::json!({})), &host(false))
        .unwrap()
        .unwrap();
    assert_eq!(s.memory_mib, DEFAULT_MEMORY_MIB);
    assert_eq!(s.kernel, Path::new(FILE));
    let s = spec(&ok[1..], serde_json::json!({}));
    assert!(from_spec(&s, &host(true)).unwrap().is_some());
}

#[test]
fn bad_annotations_are_named() {
    let base = [(VM, "true"), (KERNEL, FILE), (AGENT, FILE)];
    let with = |k, v| {
        let mut a = base.to_vec();
        a.push((k, v));
        err(&a)
    };
    assert!(with(MEMORY, "64").starts_with("dev.husk.vm.memory_mib: a guest of 64 MiB is below"));
    assert!(with(MEMORY, "lots").starts_with("dev.husk.vm.memory_mib \"lots\""));
    assert!(with(VCPUS, "2").starts_with("dev.husk.vm.vcpus 2: only 1 vCPU"));
    let e = err(&[
        (VM, "true"),
        (KERNEL, "/nonexistent/vmlinuz"),
        (AGENT, FILE),
    ]);
    assert_eq!(
        e,
        "dev.husk.vm.kernel /nonexistent/vmlinuz: No such file or directory"
    );
    let e = err(&[(VM, "true"), (KERNEL, FILE), (AGENT, "/")]);
    assert_eq!(e, "dev.husk.vm.agent /: not a regular file");
}

#[test]
fn memory_follows_the_limit() {
    let mb = |n: i64| serde_json::json!({"linux": {"resources": {"memory": {"limit": n << 20}}}});
    let ann = [(VM, "true"), (KERNEL, FILE), (AGENT, FILE)];
    let s = from_spec(&spec(&ann, mb(512)), &host(false))
        .unwrap()
        .unwrap();
    assert_eq!(s.memory_mib, 512 - VMM_OVERHEAD_MIB);
    let e = from_spec(&spec(&ann, mb(160)), &host(false)).unwrap_err();
    assert!(
        e.starts_with("linux.resources.memory.limit: a guest of 96 MiB"),
        "{e}"
    );
    let mut a = ann.to_vec();
    a.push((MEMORY, "1024"));
    let e = from_spec(&spec(&a, mb(512)), &host(false)).unwrap_err();
    assert!(
        e.starts_with("dev.husk.vm.memory_mib 1024: more than"),
        "{e}"
    );
}

#[test]
fn kernel_from_env_then_default() {
    let env = |k: &str| (k == KERNEL_ENV).then(|| "/nonexistent/k".to_string());
    let h = Host {
        invoked_as_vm: true,
        env: &env,
        exe_dir: None,
    };
    let s = spec(&[(AGENT, FILE)], serde_json::json!({}));
    assert_eq!(
        from_spec(&s, &h).unwrap_err(),
        "HUSK_VM_KERNEL /nonexistent/k: No such file or directory"
    );
    if !Path::new(KERNEL_DEFAULT).exists() {
        let e = from_spec(&s, &host(true)).unwrap_err();
        assert!(e.starts_with("dev.husk.vm.kernel: no guest kernel"), "{e}");
    }
}

#[test]
fn binds_files_in_directories_out() {
    let ann = [(VM, "true"), (KERNEL, FILE), (AGENT, FILE)];
    let m = |src: &str, dst: &str| serde_json::json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro"]});
    let mounts = serde_json::json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        m("/etc/passwd", "/etc/hostname"),
        m("/tmp", "/dev/shm"),
    ]});
    let s = from_spec(&spec(&ann, mounts), &host(false))
        .unwrap()
        .unwrap();
    assert_eq!(s.binds.len(), 1);
    assert_eq!(s.binds[0].guest, "/etc/hostname");
    let e = from_spec(
        &spec(&ann, serde_json::json!({"mounts": [m("/tmp", "/data")]})),
        &host(false),
    )
    .unwrap_err();
    assert!(
        e.starts_with("mounts[0] /tmp on /data: directory bind mounts are not supported"),
        "{e}"
    );
}
