//! OOM notifications for `husk events`.
//!
//! v1: an eventfd registered through cgroup.event_control on
//! memory.oom_control; the kernel signals it on every OOM and once more when
//! the cgroup goes away. v2: memory.events, whose `oom_kill` counter grows on
//! every OOM kill; kernfs wakes poll(2) (POLLPRI) on the open file whenever
//! the file changes, so no inotify is needed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::manager::{route, Target};
use super::paths::CgroupPaths;
use super::{fs, Error};

#[derive(Debug, PartialEq, Eq)]
pub enum OomEvent {
    /// This many OOM events since the last one reported.
    Oom(u64),
    /// The cgroup is gone: no more events will come.
    Gone,
}

/// A pollable source of OOM events (poll its fd for reading, then `wait`).
pub struct OomWatch {
    inner: Inner,
}

enum Inner {
    V1 {
        efd: EventFd,
        // Kept open: the registration lives as long as this file.
        _oom_control: File,
        event_control: PathBuf,
    },
    V2 {
        events: File,
        path: PathBuf,
        last: u64,
    },
}

pub(super) fn watch(p: &CgroupPaths) -> Result<OomWatch, Error> {
    let sys = |path: PathBuf, what: &'static str| {
        move |e: std::io::Error| Error::Sys {
            controller: "memory".into(),
            path: path.clone(),
            what,
            source: e,
        }
    };
    match route(p, "memory", Some("memory")) {
        Some(Target::V1(h)) => {
            let oom_path = h.dir.join("memory.oom_control");
            let oom = File::open(&oom_path).map_err(sys(oom_path.clone(), "open"))?;
            let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
                .map_err(|e| sys(oom_path.clone(), "eventfd")(e.into()))?;
            let reg = format!("{} {}", efd.as_fd().as_raw_fd(), oom.as_raw_fd());
            fs::write("memory", &h.dir, "cgroup.event_control", &reg)?;
            Ok(OomWatch {
                inner: Inner::V1 {
                    efd,
                    _oom_control: oom,
                    event_control: h.dir.join("cgroup.event_control"),
                },
            })
        }
        Some(Target::V2(h)) => {
            let path = h.dir.join("memory.events");
            let mut events = File::open(&path).map_err(sys(path.clone(), "open"))?;
            let last = oom_kills(&mut events).map_err(sys(path.clone(), "read"))?;
            Ok(OomWatch {
                inner: Inner::V2 { events, path, last },
            })
        }
        None => Err(super::manager::no_controller(
            "oom events",
            "memory",
            Some("memory"),
        )),
    }
}

/// The `oom_kill` counter of an open memory.events, read from the start.
fn oom_kills(f: &mut File) -> std::io::Result<u64> {
    let mut s = String::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_string(&mut s)?;
    Ok(fs::parse_keyed(&s).get("oom_kill").copied().unwrap_or(0))
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::V1 { efd, .. } => efd.as_fd(),
            Inner::V2 { events, .. } => events.as_fd(),
        }
    }
}

impl OomWatch {
    /// Block until the next OOM event or the cgroup's removal.
    pub fn wait(&mut self) -> Result<OomEvent, Error> {
        match &mut self.inner {
            Inner::V1 {
                efd, event_control, ..
            } => {
                let n = efd.read().map_err(|e| Error::Sys {
                    controller: "memory".into(),
                    path: event_control.clone(),
                    what: "read eventfd",
                    source: e.into(),
                })?;
                // The kernel also signals the eventfd when the cgroup goes.
                if !event_control.exists() {
                    return Ok(OomEvent::Gone);
                }
                Ok(OomEvent::Oom(n))
            }
            Inner::V2 { events, path, last } => loop {
                let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => {
                        return Err(Error::Sys {
                            controller: "memory".into(),
                            path: path.clone(),
                            what: "poll",
                            source: e.into(),
                        })
                    }
                }
                match oom_kills(events) {
                    Ok(n) if n > *last => {
                        let d = n - *last;
                        *last = n;
                        return Ok(OomEvent::Oom(d));
                    }
                    Ok(_) => {}
                    // A removed cgroup's open files read ENODEV.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENOENT)) => {
                        return Ok(OomEvent::Gone)
                    }
                    Err(source) => {
                        return Err(Error::Sys {
                            controller: "memory".into(),
                            path: path.clone(),
                            what: "read",
                            source,
                        })
                    }
                }
            },
        }
    }
}
