//! `state`, `list`, `ps`: runc's output shapes.

use super::out;
use crate::container::{lifecycle, Status, Store};
use anyhow::{bail, Result};

#[derive(Debug)]
pub struct StateArgs {
    pub id: String,
}

#[derive(Debug)]
pub struct ListArgs {
    /// Print only the ids
    pub quiet: bool,
    /// table or json
    pub format: String,
}

#[derive(Debug)]
pub struct PsArgs {
    pub id: String,
    /// table or json
    pub format: String,
    /// Options for ps(1)
    pub ps_args: Vec<String>,
}

pub fn state(store: &Store, a: &StateArgs) -> Result<i32> {
    let (_d, st, status) = lifecycle::load(store, &a.id)?;
    out!("{}", serde_json::to_string_pretty(&st.report(status))?);
    Ok(0)
}

pub fn list(store: &Store, a: &ListArgs) -> Result<i32> {
    let mut reports = Vec::new();
    for id in store.list() {
        if let Ok((_d, st, status)) = lifecycle::load(store, &id) {
            reports.push(st.report(status));
        }
    }
    if a.quiet {
        for r in &reports {
            out!("{}", r.id);
        }
        return Ok(0);
    }
    if a.format == "json" {
        out!("{}", serde_json::to_string(&reports)?);
        return Ok(0);
    }
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(reports.iter().map(|r| {
                [
                    r.id.clone(),
                    r.pid.to_string(),
                    r.status.to_string(),
                    r.bundle.display().to_string(),
                    r.created.clone(),
                    r.owner.clone(),
                ]
            }))
            .collect();
    out!("{}", table(&rows).trim_end_matches('\n'));
    Ok(0)
}

/// Columns padded like Go's tabwriter (min width 12, padding 3) as runc
/// prints them.
pub fn table(rows: &[[String; 6]]) -> String {
    let mut w = [0usize; 6];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{:width$}", c, width = w[i].max(9) + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn ps(store: &Store, a: &PsArgs) -> Result<i32> {
    let (_d, st, status) = lifecycle::load(store, &a.id)?;
    if status == Status::Stopped {
        bail!("container {:?} is stopped", a.id);
    }
    let pids = lifecycle::container_pids(&st);
    if a.format == "json" {
        out!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps").args(&args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        bail!("ps printed nothing")
    };
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow::anyhow!("ps output has no PID column"))?;
    out!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                out!("{l}");
            }
        }
    }
    Ok(0)
}
