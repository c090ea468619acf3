//! The root dir: one directory per container holding state.json and the
//! exec fifo, a per-container lock (flock on the directory), atomic writes.

use super::state::State;
use super::status::Status;
use crate::sys::{self, proc};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {0:?}: {1}")]
    BadId(String, &'static str),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Sys(#[from] sys::SysError),
    #[error("{path}: {msg}")]
    Corrupt { path: String, msg: String },
}

/// runc's rule: letters, digits, `_ + - .`, not `.`/`..`, at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let bad = |why| Err(Error::BadId(id.chars().take(64).collect(), why));
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("may hold only letters, digits and _ + - .");
    }
    Ok(())
}

pub struct Store {
    pub root: PathBuf,
}

/// One container's directory, locked for as long as this lives.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    lock: OwnedFd,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    fn ensure_root(&self) -> Result<(), Error> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| sys::SysError {
                what: format!("create root {}", self.root.display()),
                errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
        Ok(())
    }

    /// Make a new container's directory; fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir, Error> {
        validate_id(id)?;
        self.ensure_root()?;
        let path = self.root.join(id);
        match nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o711)) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => return Err(Error::Exists(id.into())),
            Err(e) => {
                return Err(sys::SysError {
                    what: format!("create {}", path.display()),
                    errno: e,
                }
                .into())
            }
        }
        match lock(&path) {
            Ok(lock) => Ok(ContainerDir {
                id: id.into(),
                path,
                lock,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Open (and lock) an existing container's directory.
    pub fn open(&self, id: &str) -> Result<ContainerDir, Error> {
        validate_id(id)?;
        let path = self.root.join(id);
        let lock = lock(&path).map_err(|e| match e {
            Error::Sys(s) if s.errno == nix::errno::Errno::ENOENT => Error::NotFound(id.into()),
            e => e,
        })?;
        Ok(ContainerDir {
            id: id.into(),
            path,
            lock,
        })
    }

    /// Ids of every container, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|id| validate_id(id).is_ok())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

fn lock(path: &Path) -> Result<OwnedFd, Error> {
    // flock needs a real fd, not O_PATH: the directory opened read-only.
    let fd = sys::io::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
    )
    .map_err(Error::Sys)?;
    sys::io::lock_exclusive(&fd, path).map_err(Error::Sys)?;
    Ok(fd)
}

impl ContainerDir {
    pub fn lock_fd(&self) -> i32 {
        self.lock.as_raw_fd()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// None while the container is still being created.
    pub fn load(&self) -> Result<Option<State>, Error> {
        let p = self.path.join(STATE_FILE);
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Corrupt {
                    path: p.display().to_string(),
                    msg: e.to_string(),
                })
            }
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: p.display().to_string(),
                msg: e.to_string(),
            })
    }

    pub fn save(&self, state: &State) -> Result<(), Error> {
        let data = serde_json::to_vec(state).expect("serializable");
        sys::fs::write_atomic(&self.path.join(STATE_FILE), &data)?;
        Ok(())
    }

    /// The status, derived from what is alive now.
    pub fn status(&self, state: &State) -> Status {
        if !proc::alive(state.pid, state.init_start_time) {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if super::lifecycle::manager(state).is_some_and(|m| m.is_frozen().unwrap_or(false)) {
            return Status::Paused;
        }
        Status::Running
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<(), Error> {
        std::fs::remove_dir_all(&self.path).map_err(|e| sys::SysError {
            what: format!("remove {}", self.path.display()),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "x y", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"a".repeat(1025)).is_err());
        assert!(validate_id(&"a".repeat(1024)).is_ok());
        assert_eq!(
            validate_id("../x").unwrap_err().to_string(),
            "container id \"../x\": may hold only letters, digits and _ + - ."
        );
    }

    #[test]
    fn create_is_exclusive_and_list_sees_it() {
        let root = std::env::temp_dir().join(format!("husk-store-{}", std::process::id()));
        let s = Store::new(&root);
        let d = s.create("one").unwrap();
        drop(d);
        assert!(matches!(s.create("one"), Err(Error::Exists(_))));
        assert!(matches!(s.open("two"), Err(Error::NotFound(_))));
        assert_eq!(s.list(), vec!["one".to_string()]);
        let d = s.open("one").unwrap();
        assert!(d.load().unwrap().is_none());
        d.remove().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
