//! `update`: change a live container's limits (runc's flags, `-r FILE`,
//! `-r -` reading JSON from stdin as containerd's shim does).

use crate::container::{lifecycle, Store};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// JSON file of linux.resources ("-" for stdin)
    pub resources: Option<String>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

/// "64m", "1g", "512k", "1024", "-1" → bytes (docker's RAMInBytes).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mul as f64) as i64)
}

fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    if let Some(src) = &a.resources {
        let data = if src == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        } else {
            std::fs::read_to_string(src).with_context(|| format!("--resources {src}"))?
        };
        return Ok(crate::spec::parse_json(
            std::path::Path::new(src),
            data.as_bytes(),
        )?);
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by husk");
    }
    let mut mem = serde_json::Map::new();
    let put = |m: &mut serde_json::Map<String, Value>, k: &str, v: Option<&String>| -> Result<()> {
        if let Some(v) = v {
            m.insert(
                k.into(),
                json!(parse_bytes(v).with_context(|| format!("--{k}"))?),
            );
        }
        Ok(())
    };
    put(&mut mem, "limit", a.memory.as_ref())?;
    put(&mut mem, "reservation", a.memory_reservation.as_ref())?;
    put(&mut mem, "swap", a.memory_swap.as_ref())?;
    put(&mut mem, "kernel", a.kernel_memory.as_ref())?;
    put(&mut mem, "kernelTCP", a.kernel_memory_tcp.as_ref())?;
    let mut cpu = serde_json::Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    set("shares", a.cpu_share.map(|v| json!(v)));
    set("quota", a.cpu_quota.map(|v| json!(v)));
    set("period", a.cpu_period.map(|v| json!(v)));
    set("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    set("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    set("cpus", a.cpuset_cpus.clone().map(|v| json!(v)));
    set("mems", a.cpuset_mems.clone().map(|v| json!(v)));
    let mut r = serde_json::Map::new();
    if !mem.is_empty() {
        r.insert("memory".into(), Value::Object(mem));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        r.insert("pids".into(), json!({"limit": p}));
    }
    if let Some(w) = a.blkio_weight {
        r.insert("blockIO".into(), json!({"weight": w}));
    }
    Ok(serde_json::from_value(Value::Object(r))?)
}

pub fn update(store: &Store, a: &UpdateArgs) -> Result<i32> {
    let r = resources(a)?;
    lifecycle::update(store, &a.id, &r)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }
}
