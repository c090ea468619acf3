//! File access to cgroupfs. Every error names the controller and the file,
//! so a failing write reads like `cgroup memory: <path>: write "64": EBUSY`.
//!
//! cgroupfs files want one value per write(2), so every value goes out in a
//! single call; O_TRUNC is ignored by kernfs but makes the fake cgroupfs of the
//! unit tests behave like the real one (a read returns the last value).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::Path;

use super::Error;

#[cfg(test)]
thread_local! {
    /// Every write of this thread, in order: what the unit tests assert on.
    pub(crate) static JOURNAL: std::cell::RefCell<Vec<(std::path::PathBuf, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Write `value` to `dir/file` in one write(2).
pub(crate) fn write(controller: &str, dir: &Path, file: &str, value: &str) -> Result<(), Error> {
    let path = dir.join(file);
    let res = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    #[cfg(test)]
    if res.is_ok() {
        JOURNAL.with(|j| j.borrow_mut().push((path.clone(), value.to_string())));
    }
    res.map_err(|source| Error::Write {
        controller: controller.to_string(),
        path,
        value: value.to_string(),
        source,
    })
}

/// Write for a resource of config.json: a missing file means this host cannot
/// apply the resource, which deserves a message naming the resource.
pub(crate) fn write_res(
    resource: &str,
    controller: &str,
    dir: &Path,
    file: &str,
    value: &str,
) -> Result<(), Error> {
    write(controller, dir, file, value).map_err(|e| match e {
        Error::Write { ref source, .. } if source.kind() == io::ErrorKind::NotFound => {
            Error::Unsupported {
                resource: resource.to_string(),
                reason: format!("the {controller} controller has no {file} on this host"),
            }
        }
        e => e,
    })
}

pub(crate) fn read(controller: &str, dir: &Path, file: &str) -> Result<String, Error> {
    let path = dir.join(file);
    let mut s = String::new();
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|source| Error::Read {
            controller: controller.to_string(),
            path,
            source,
        })?;
    Ok(s)
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// A single number; "max" (v2) reads as u64::MAX, as runc does.
pub(crate) fn read_u64(controller: &str, dir: &Path, file: &str) -> Result<u64, Error> {
    let s = read(controller, dir, file)?;
    parse_u64(s.trim()).ok_or_else(|| Error::Parse {
        controller: controller.to_string(),
        path: dir.join(file),
        content: s.trim().to_string(),
        reason: "not a number".into(),
    })
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    // v1 files may hold -1 for "unlimited" (e.g. cpu.cfs_quota_us): runc reads 0.
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<i64>().ok().map(|_| 0))
}

/// "key value" lines (memory.stat, cpu.stat, memory.events, …).
pub(crate) fn read_keyed(
    controller: &str,
    dir: &Path,
    file: &str,
) -> Result<BTreeMap<String, u64>, Error> {
    let s = read(controller, dir, file)?;
    Ok(parse_keyed(&s))
}

pub(crate) fn parse_keyed(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// The pids in one cgroup.procs file.
pub(crate) fn read_pids(controller: &str, dir: &Path) -> Result<Vec<i32>, Error> {
    Ok(read(controller, dir, "cgroup.procs")?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

#[cfg(test)]
pub(crate) fn take_journal() -> Vec<(std::path::PathBuf, String)> {
    JOURNAL.with(|j| std::mem::take(&mut *j.borrow_mut()))
}
