//! config.json / process.json → checked types. No syscalls beyond reading
//! the files and looking at the host paths they name.

pub mod mounts;
pub mod validate;

pub use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
pub use validate::{validate_process, validate_spec};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error("{field}: {msg}")]
    Field { field: String, msg: String },
}

impl Error {
    pub fn field(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Field {
            field: field.into(),
            msg: msg.into(),
        }
    }
    fn file(path: &Path, msg: impl Into<String>) -> Error {
        Error::File {
            path: path.display().to_string(),
            msg: msg.into(),
        }
    }
}

/// A bundle whose config.json parsed and validated.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Parse JSON naming the field of any error (`process.user.uid: invalid
/// type ...`), logging unknown properties at debug level (the spec says to
/// ignore them).
///
/// A valid document with no debug log to write takes plain serde_json, the
/// code that also reads state.json; only errors and --debug walk it again
/// with the path-tracking and unknown-property wrappers, whose
/// monomorphized code (~0.8 MB) then stays out of a start's memory.
/// Both accept exactly the same documents.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, data: &[u8]) -> Result<T, Error> {
    if !log::log_enabled!(log::Level::Debug) {
        if let Ok(v) = serde_json::from_slice(data) {
            return Ok(v);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let mut unknown = Vec::new();
    let mut cb = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
    let ignored = serde_ignored::Deserializer::new(&mut de, &mut cb);
    let v: T = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field == "." || field.is_empty() {
            Error::file(path, inner.to_string())
        } else {
            Error::file(path, format!("{field}: {inner}"))
        }
    })?;
    de.end().map_err(|e| Error::file(path, e.to_string()))?;
    for u in unknown {
        log::debug!("{}: ignoring unknown property {u}", path.display());
    }
    Ok(v)
}

/// Load and validate `<bundle>/config.json`.
pub fn load_bundle(bundle: &Path) -> Result<Bundle, Error> {
    let dir = std::path::absolute(bundle).map_err(|e| Error::file(bundle, e.to_string()))?;
    let cfg = dir.join("config.json");
    let data = std::fs::read(&cfg).map_err(|e| Error::file(&cfg, io_msg(&e)))?;
    let spec: Spec = if needs_fixups(&data) {
        let mut v: serde_json::Value = parse_json(&cfg, &data)?;
        fixups(&mut v);
        parse_json(&cfg, &serde_json::to_vec(&v).expect("serializable"))?
    } else {
        parse_json(&cfg, &data)?
    };
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::field("root", "missing: the bundle must name its rootfs"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::field(
                "root.path",
                format!("{}: not a directory", rootfs.display()),
            ))
        }
        Err(e) => {
            return Err(Error::field(
                "root.path",
                format!("{}: {}", rootfs.display(), io_msg(&e)),
            ))
        }
    }
    validate_spec(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Load a process.json (for `exec --process`).
pub fn load_process(path: &Path) -> Result<Process, Error> {
    let data = std::fs::read(path).map_err(|e| Error::file(path, io_msg(&e)))?;
    let p: Process = parse_json(path, &data)?;
    validate_process(&p, "process")?;
    Ok(p)
}

pub fn io_msg(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// The namespaces a spec asks for, in a fixed order.
pub fn namespaces(spec: &Spec) -> Vec<oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
}

pub fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == t)
}

/// Does the config use a spelling oci-spec 0.7 gets wrong?
fn needs_fixups(data: &[u8]) -> bool {
    let has = |n: &[u8]| data.windows(n.len()).any(|w| w == n);
    has(b"timeOffsets") || has(b"IOPSDevice")
}

/// Bring the runtime spec's spelling to what oci-spec 0.7 reads:
/// `linux.timeOffsets.<clock>` is `{"secs":S,"nanosecs":N}` in the spec and
/// a string in the crate (kept as "S N", the timens_offsets form), and the
/// IOPS throttles are `throttle*IOPSDevice` in the spec but `*IopsDevice` in
/// the crate (which would otherwise drop them silently).
pub fn fixups(v: &mut serde_json::Value) {
    if let Some(t) = v
        .pointer_mut("/linux/timeOffsets")
        .and_then(|t| t.as_object_mut())
    {
        for (_clock, off) in t.iter_mut() {
            if off.is_object() {
                let secs = off.get("secs").and_then(|x| x.as_i64()).unwrap_or(0);
                let nanos = off.get("nanosecs").and_then(|x| x.as_u64()).unwrap_or(0);
                *off = serde_json::Value::String(format!("{secs} {nanos}"));
            }
        }
    }
    if let Some(r) = v.pointer_mut("/linux/resources") {
        fix_resources(r);
    }
}

/// The IOPS throttle spelling fix for a bare `linux.resources` object (as
/// `update --resources` reads it).
pub fn fix_resources(r: &mut serde_json::Value) {
    if let Some(b) = r.pointer_mut("/blockIO").and_then(|b| b.as_object_mut()) {
        for (from, to) in [
            ("throttleReadIOPSDevice", "throttleReadIopsDevice"),
            ("throttleWriteIOPSDevice", "throttleWriteIopsDevice"),
        ] {
            if let Some(x) = b.remove(from) {
                b.insert(to.into(), x);
            }
        }
    }
}
