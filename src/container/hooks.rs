//! Running hooks: the state JSON on stdin, the hook's own env, a timeout.

use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("hooks.{kind}[{index}] {path}: {msg}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        msg: String,
    },
}

/// Run each hook in order; the first failure stops the list.
pub fn run(kind: &'static str, hooks: &[Hook], state_json: &str) -> Result<(), Error> {
    for (index, h) in hooks.iter().enumerate() {
        run_one(h, state_json).map_err(|msg| Error::Failed {
            kind,
            index,
            path: h.path().display().to_string(),
            msg,
        })?;
    }
    Ok(())
}

fn run_one(h: &Hook, state_json: &str) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    // A timeout too large to add to now is no timeout at all.
    let deadline = h
        .timeout()
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(st) => break st,
            None => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
                }
                // Hooks are rare and short; a bounded wait keeps this simple.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    };
    let err = err.trim();
    Err(if err.is_empty() {
        how
    } else {
        format!("{how}: {err}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn passes_state_and_env() {
        let out = std::env::temp_dir().join(format!("husk-hook-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$FOO\" >> {0}"],"env":["FOO=bar"]}}"#,
            out.display()
        ));
        run("prestart", &[h], r#"{"id":"x"}"#).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"}bar\n"
        );
        std::fs::remove_file(&out).unwrap();
    }

    #[test]
    fn failure_and_timeout_name_the_hook() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo nope >&2; exit 3"]}"#);
        let e = run("poststart", &[h], "{}").unwrap_err().to_string();
        assert_eq!(e, "hooks.poststart[0] /bin/sh: exited with status 3: nope");
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let e = run("createRuntime", &[h], "{}").unwrap_err().to_string();
        assert!(e.ends_with("timed out after 1s"), "{e}");
    }
}
