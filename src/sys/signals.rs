//! The signals husk forwards to a container: every catchable one but the
//! faults, which must stay deliverable to husk itself.

use nix::sys::signal::{SigSet, Signal};

pub fn forwardable() -> SigSet {
    let mut s = SigSet::all();
    for sig in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        s.remove(sig);
    }
    s
}
