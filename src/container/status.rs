//! The state machine: creating → created → running ⇄ paused → stopped.
//!
//! The status is derived, never trusted from disk: a dead (or recycled) init
//! pid means stopped, the exec fifo's presence means created, a frozen
//! cgroup means paused.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// An operation on a container, for the transition checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Kill,
    Delete,
    ForceDelete,
    Exec,
    Pause,
    Resume,
    Update,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Start => "start",
            Op::Kill => "kill",
            Op::Delete | Op::ForceDelete => "delete",
            Op::Exec => "exec into",
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Update => "update",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot {op} a container that is {status}")]
pub struct IllegalTransition {
    pub op: Op,
    pub status: Status,
}

impl Status {
    /// Is `op` legal in this status? An error names the current status.
    pub fn check(self, op: Op) -> Result<(), IllegalTransition> {
        use Status::*;
        let ok = match op {
            Op::Start => self == Created,
            Op::Kill => matches!(self, Created | Running | Paused),
            Op::Delete => matches!(self, Stopped | Created),
            Op::ForceDelete => true,
            Op::Exec => matches!(self, Created | Running),
            Op::Pause => matches!(self, Running | Created),
            Op::Resume => self == Paused,
            Op::Update => matches!(self, Created | Running | Paused),
        };
        if ok {
            Ok(())
        } else {
            Err(IllegalTransition { op, status: self })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert!(Status::Created.check(Op::Start).is_ok());
        let e = Status::Running.check(Op::Start).unwrap_err();
        assert_eq!(e.to_string(), "cannot start a container that is running");
        assert!(Status::Running.check(Op::Delete).is_err());
        assert!(Status::Running.check(Op::ForceDelete).is_ok());
        assert!(Status::Created.check(Op::Delete).is_ok());
        assert!(Status::Stopped.check(Op::Kill).is_err());
        assert_eq!(
            Status::Stopped.check(Op::Exec).unwrap_err().to_string(),
            "cannot exec into a container that is stopped"
        );
        assert!(Status::Paused.check(Op::Resume).is_ok());
        assert!(Status::Running.check(Op::Resume).is_err());
        assert!(Status::Paused.check(Op::Exec).is_err());
    }
}
