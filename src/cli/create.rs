//! `create` and `run`.

use crate::container::lifecycle::{self, CreateOpts};
use crate::container::Store;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct CommonCreate {
    /// Container id
    pub id: String,
    /// Path to the bundle directory
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master (with terminal: true)
    pub console_socket: Option<PathBuf>,
    /// File to write the init's host pid to
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    pub no_pivot: bool,
    /// Do not create a new session keyring
    pub no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container
    pub preserve_fds: u32,
}

#[derive(Debug)]
pub struct CreateArgs {
    pub c: CommonCreate,
}

#[derive(Debug)]
pub struct RunArgs {
    pub c: CommonCreate,
    /// Detach from the container's process
    pub detach: bool,
    /// Keep the container after it exits
    pub keep: bool,
    /// Do not become a subreaper
    pub no_subreaper: bool,
}

fn opts(c: &CommonCreate) -> CreateOpts {
    CreateOpts {
        console_socket: c.console_socket.clone(),
        pid_file: c.pid_file.clone(),
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds + listen_fds(),
    }
}

/// Socket activation: LISTEN_FDS in our environment adds to preserved fds.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Validate everything before the first side effect.
fn load(c: &CommonCreate, detach: bool) -> Result<crate::spec::Bundle> {
    crate::container::store::validate_id(&c.id)?;
    let bundle = crate::spec::load_bundle(&c.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && detach && c.console_socket.is_none() {
        bail!("process.terminal is true but no --console-socket was given (needed to detach)");
    }
    if !terminal && c.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false");
    }
    Ok(bundle)
}

pub fn create(store: &Store, a: &CreateArgs) -> Result<i32> {
    let bundle = load(&a.c, true)?;
    lifecycle::create(store, &a.c.id, bundle, &opts(&a.c))?;
    Ok(0)
}

pub fn run(store: &Store, a: &RunArgs) -> Result<i32> {
    let bundle = load(&a.c, a.detach)?;
    if !a.detach {
        super::foreground::prepare(!a.no_subreaper)?;
    }
    let created = lifecycle::create(store, &a.c.id, bundle, &opts(&a.c))?;
    let (dir, state) = (created.dir, created.state);
    let started = match lifecycle::start_created(&dir, &state) {
        Ok(s) => s,
        Err(e) => {
            let _ = lifecycle::destroy(dir, &state);
            return Err(e);
        }
    };
    drop(dir);
    if let Err(e) = started.finish(&state) {
        let _ = lifecycle::delete(store, &a.c.id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let code = super::foreground::wait(state.pid, created.pty)?;
    if !a.keep {
        let _ = lifecycle::delete(store, &a.c.id, true);
    }
    Ok(code)
}
