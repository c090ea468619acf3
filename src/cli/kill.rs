//! `kill`, `pause`, `resume`.

use crate::container::{lifecycle, Store};
use anyhow::{anyhow, bail, Result};

#[derive(Debug)]
pub struct KillArgs {
    pub id: String,
    /// Signal name or number
    pub signal: String,
    /// Signal every process of the container
    pub all: bool,
}

#[derive(Debug)]
pub struct IdArg {
    pub id: String,
}

/// runc's rules: a number, or a name with or without SIG, any case;
/// SIGRTMIN+n / SIGRTMAX-n too.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if n > 0 && n <= libc::SIGRTMAX() {
            return Ok(n);
        }
        bail!("signal {s:?}: out of range");
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| anyhow!("unknown signal {s:?}"))?
        };
        return Ok(libc::SIGRTMIN() + off);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| anyhow!("unknown signal {s:?}"))?
        };
        return Ok(libc::SIGRTMAX() - off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

pub fn kill(store: &Store, a: &KillArgs) -> Result<i32> {
    let sig = parse_signal(&a.signal)?;
    lifecycle::kill(store, &a.id, sig, a.all)?;
    Ok(0)
}

pub fn pause(store: &Store, a: &IdArg, pause: bool) -> Result<i32> {
    lifecycle::pause(store, &a.id, pause)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(parse_signal("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert!(parse_signal("SIGBOGUS").is_err());
        assert!(parse_signal("0").is_err());
        assert_eq!(
            parse_signal("bogus").unwrap_err().to_string(),
            "unknown signal \"bogus\""
        );
    }
}
