//! `events`: runc-shaped JSON — `--stats` once, else a stream of stats
//! every `--interval` plus OOM events, until the container stops.

use super::out;
use crate::cgroups::OomEvent;
use crate::container::{lifecycle, Status, Store};
use anyhow::{anyhow, bail, Result};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

#[derive(Debug)]
pub struct EventsArgs {
    pub id: String,
    /// Print the stats once and exit
    pub stats: bool,
    /// Stats interval (e.g. 5s, 500ms)
    pub interval: String,
}

pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, unit) = t.split_at(
        t.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("--interval {s:?}: not a duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("--interval {s:?}: unknown unit {unit:?}"),
    };
    if secs <= 0.0 {
        bail!("--interval {s:?}: must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn stats_line(id: &str, m: &crate::cgroups::Manager) -> Result<String> {
    let data = m.stats()?;
    Ok(serde_json::json!({"type": "stats", "id": id, "data": data}).to_string())
}

pub fn events(store: &Store, a: &EventsArgs) -> Result<i32> {
    let interval = parse_duration(&a.interval)?;
    let (dir, state, status) = lifecycle::load(store, &a.id)?;
    // Not held while streaming: every other command on the container
    // needs the lock.
    drop(dir);
    if status == Status::Stopped {
        bail!("container {:?} is stopped", a.id);
    }
    let m =
        lifecycle::manager(&state).ok_or_else(|| anyhow!("container {:?} has no cgroup", a.id))?;
    if a.stats {
        out!("{}", stats_line(&a.id, &m)?);
        return Ok(0);
    }
    let mut oom = m.oom_events().ok();
    loop {
        let ms = interval.as_millis().min(i32::MAX as u128) as i32;
        let ready = match &oom {
            Some(w) => {
                let fd = w.as_fd().as_raw_fd();
                crate::sys::io::poll(&[(fd, libc::POLLIN | libc::POLLPRI)], ms)?[0] != 0
            }
            None => {
                std::thread::sleep(interval);
                false
            }
        };
        if ready {
            match oom.as_mut().map(|w| w.wait()) {
                Some(Ok(OomEvent::Oom(_))) => {
                    out!("{}", serde_json::json!({"type": "oom", "id": a.id}));
                }
                Some(Ok(OomEvent::Gone)) | Some(Err(_)) => oom = None,
                None => {}
            }
        }
        let Ok((d, st, status)) = lifecycle::load(store, &a.id) else {
            return Ok(0);
        };
        drop((d, st));
        if status == Status::Stopped {
            return Ok(0);
        }
        if !ready {
            if let Ok(line) = stats_line(&a.id, &m) {
                out!("{line}");
            }
        }
    }
}
