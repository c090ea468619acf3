//! The per-container initramfs: a newc ("070701") cpio archive written here
//! in Rust, so the host needs no `cpio` program.
//!
//! The guest kernel unpacks it into its rootfs tmpfs before running `/init`
//! (the agent). The archive holds the container's rootfs, the file bind
//! mounts of the spec copied in, the agent as `/init` and its config.
//!
//! What newc cannot carry: xattrs (so file capabilities and SELinux labels
//! are lost) and hardlinks are written as independent copies.

use std::collections::BTreeSet;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// newc's header is 6 bytes of magic and 13 fields of 8 hex digits.
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("initramfs: reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("initramfs: writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error("initramfs: {path}: {size} bytes is too large for a newc entry (limit 4 GiB)")]
    TooLarge { path: String, size: u64 },
    #[error("initramfs: {path}: not a valid path in the guest (must be absolute, no `..`)")]
    BadGuestPath { path: String },
    #[error("initramfs: {path}: file changed size while being archived")]
    Changed { path: PathBuf },
}

type Result<T> = std::result::Result<T, InitramfsError>;

/// Ownership, permission bits and mtime of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits only (0o7777); the type bits come from the entry kind.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
}

impl Meta {
    pub fn new(perm: u32) -> Self {
        Meta {
            perm,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    fn from_metadata(md: &Metadata) -> Self {
        Meta {
            perm: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            // newc stores 32 bits; clamp rather than wrap dates before 1970.
            mtime: md.mtime().clamp(0, u32::MAX as i64) as u32,
        }
    }
}

/// A streaming newc writer. Entries must come parents first, as the kernel
/// creates each one as it reads it.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        // Inode 0 confuses some readers; start at 1 (the trailer keeps 0).
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    pub fn dir(&mut self, path: &str, meta: Meta) -> Result<()> {
        self.header(path, libc::S_IFDIR | meta.perm, meta, 0, (0, 0))
    }

    pub fn file(&mut self, path: &str, meta: Meta, data: &[u8]) -> Result<()> {
        // Reading a slice cannot fail: any error is the sink's.
        self.file_from(path, meta, data.len() as u64, &mut &data[..])
            .map_err(|e| match e {
                InitramfsError::Read { source, .. } => InitramfsError::Write(source),
                e => e,
            })
    }

    /// A regular file of exactly `size` bytes read from `src`.
    pub fn file_from(
        &mut self,
        path: &str,
        meta: Meta,
        size: u64,
        src: &mut dyn Read,
    ) -> Result<()> {
        let size32 = u32::try_from(size).map_err(|_| InitramfsError::TooLarge {
            path: path.to_string(),
            size,
        })?;
        self.header(path, libc::S_IFREG | meta.perm, meta, size32, (0, 0))?;
        let copied = io::copy(&mut src.take(size), &mut self.out).map_err(|source| {
            InitramfsError::Read {
                path: PathBuf::from(path),
                source,
            }
        })?;
        if copied != size {
            return Err(InitramfsError::Changed {
                path: PathBuf::from(path),
            });
        }
        self.written += size;
        self.pad()
    }

    pub fn symlink(&mut self, path: &str, target: &[u8], meta: Meta) -> Result<()> {
        let len = target.len() as u32;
        self.header(path, libc::S_IFLNK | 0o777, meta, len, (0, 0))?;
        self.raw(target)?;
        self.pad()
    }

    /// A device node or fifo: `kind` is S_IFCHR, S_IFBLK or S_IFIFO.
    pub fn node(&mut self, path: &str, kind: u32, meta: Meta, rdev: (u32, u32)) -> Result<()> {
        self.header(path, kind | meta.perm, meta, 0, rdev)
    }

    /// Writes the trailer; returns the sink and the archive's size.
    pub fn finish(mut self) -> Result<(W, u64)> {
        self.next_ino = 0;
        self.header(TRAILER, 0, Meta::new(0), 0, (0, 0))?;
        self.out.flush().map_err(InitramfsError::Write)?;
        Ok((self.out, self.written))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    fn header(
        &mut self,
        path: &str,
        mode: u32,
        m: Meta,
        size: u32,
        rdev: (u32, u32),
    ) -> Result<()> {
        let name = if path == TRAILER {
            path.to_string()
        } else {
            archive_name(path)?
        };
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        let nlink = if mode & libc::S_IFMT == libc::S_IFDIR {
            2
        } else {
            1
        };
        let fields = [
            ino,
            mode,
            m.uid,
            m.gid,
            nlink,
            m.mtime,
            size,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1, // namesize counts the NUL
            0,                     // check: only used by the "070702" format
        ];
        let mut hdr = String::with_capacity(HEADER_LEN);
        hdr.push_str("070701");
        for f in fields {
            hdr.push_str(&format!("{f:08x}"));
        }
        self.raw(hdr.as_bytes())?;
        self.raw(name.as_bytes())?;
        self.raw(&[0])?;
        self.pad()
    }

    fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(InitramfsError::Write)?;
        self.written += b.len() as u64;
        Ok(())
    }

    /// newc aligns every header and every file body to 4 bytes.
    fn pad(&mut self) -> Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.raw(&[0u8; 3][..n])
    }
}

/// "/etc/hosts" → "etc/hosts", "/" → "."; refuses `..` and relative paths.
fn archive_name(path: &str) -> Result<String> {
    let bad = || InitramfsError::BadGuestPath {
        path: path.to_string(),
    };
    if !path.starts_with('/') {
        return Err(bad());
    }
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(bad)?),
            Component::ParentDir | Component::Prefix(_) => return Err(bad()),
        }
    }
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// Where an extra file's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    Bytes(Vec<u8>),
    /// A host file, read (following symlinks: it is the host's own file,
    /// e.g. the agent binary or a bind-mount source) when the archive is built.
    Host(PathBuf),
}

/// A file placed into the guest on top of the rootfs.
#[derive(Debug, Clone)]
pub struct Extra {
    pub guest_path: String,
    pub source: Source,
    pub meta: Meta,
}

/// Builds the whole archive: the rootfs directory, then the extras.
/// An extra replaces the rootfs entry at the same path.
#[derive(Debug, Default)]
pub struct InitramfsBuilder {
    rootfs: Option<PathBuf>,
    extras: Vec<Extra>,
}

impl InitramfsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rootfs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.rootfs = Some(dir.into());
        self
    }

    pub fn extra(mut self, guest_path: &str, source: Source, meta: Meta) -> Self {
        self.extras.push(Extra {
            guest_path: guest_path.to_string(),
            source,
            meta,
        });
        self
    }

    /// Writes the archive to `out` (a new file, replaced if it exists).
    /// Returns its size in bytes.
    pub fn write_to_path(&self, out: &Path) -> Result<u64> {
        let f = File::create(out).map_err(|source| InitramfsError::Read {
            path: out.into(),
            source,
        })?;
        self.write(BufWriter::with_capacity(1 << 20, f))
    }

    pub fn write<W: Write>(&self, out: W) -> Result<u64> {
        let mut cpio = CpioWriter::new(out);
        // Normalised guest paths of the extras, so the walk can skip them.
        let mut skip = BTreeSet::new();
        for e in &self.extras {
            skip.insert(archive_name(&e.guest_path)?);
        }
        let mut seen_dirs = BTreeSet::new();
        if let Some(root) = &self.rootfs {
            let md = lstat(root)?;
            cpio.dir("/", Meta::from_metadata(&md))?;
            seen_dirs.insert(".".to_string());
            walk(&mut cpio, root, "", &skip, &mut seen_dirs)?;
        }
        for e in &self.extras {
            ensure_parents(&mut cpio, &e.guest_path, &mut seen_dirs)?;
            match &e.source {
                Source::Bytes(b) => cpio.file(&e.guest_path, e.meta, b)?,
                Source::Host(p) => {
                    let mut f = File::open(p).map_err(|source| InitramfsError::Read {
                        path: p.clone(),
                        source,
                    })?;
                    let size = f
                        .metadata()
                        .map_err(|source| InitramfsError::Read {
                            path: p.clone(),
                            source,
                        })?
                        .len();
                    cpio.file_from(&e.guest_path, e.meta, size, &mut f)
                        .map_err(|e| with_host_path(e, p))?;
                }
            }
        }
        Ok(cpio.finish()?.1)
    }
}

fn with_host_path(e: InitramfsError, p: &Path) -> InitramfsError {
    match e {
        InitramfsError::Read { source, .. } => InitramfsError::Read {
            path: p.into(),
            source,
        },
        InitramfsError::Changed { .. } => InitramfsError::Changed { path: p.into() },
        e => e,
    }
}

fn lstat(p: &Path) -> Result<Metadata> {
    fs::symlink_metadata(p).map_err(|source| InitramfsError::Read {
        path: p.into(),
        source,
    })
}

/// Emits directory entries for the missing parents of an extra file.
fn ensure_parents<W: Write>(
    cpio: &mut CpioWriter<W>,
    guest: &str,
    seen: &mut BTreeSet<String>,
) -> Result<()> {
    let name = archive_name(guest)?;
    let mut prefix = String::new();
    let parts: Vec<&str> = name.split('/').collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(p);
        if seen.insert(prefix.clone()) {
            cpio.dir(&format!("/{prefix}"), Meta::new(0o755))?;
        }
    }
    Ok(())
}

/// Depth-first, parents before children, sorted for a reproducible archive.
/// Every entry is lstat'ed and symlinks are stored as links, never followed,
/// so nothing outside `dir` is read. Regular files are opened O_NOFOLLOW.
fn walk<W: Write>(
    cpio: &mut CpioWriter<W>,
    dir: &Path,
    rel: &str,
    skip: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|source| InitramfsError::Read {
        path: dir.into(),
        source,
    })?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|source| InitramfsError::Read {
            path: dir.into(),
            source,
        })?;
        names.push(ent.file_name());
    }
    names.sort();
    for name in names {
        let host = dir.join(&name);
        let Some(name) = name.to_str() else {
            // newc can carry any bytes, but guest paths here are &str; say so.
            return Err(InitramfsError::BadGuestPath {
                path: host.display().to_string(),
            });
        };
        let arch = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if skip.contains(&arch) {
            continue;
        }
        let guest = format!("/{arch}");
        let md = lstat(&host)?;
        let meta = Meta::from_metadata(&md);
        let ft = md.file_type();
        if ft.is_dir() {
            cpio.dir(&guest, meta)?;
            seen.insert(arch.clone());
            walk(cpio, &host, &arch, skip, seen)?;
        } else if ft.is_file() {
            let mut f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&host)
                .map_err(|source| InitramfsError::Read {
                    path: host.clone(),
                    source,
                })?;
            cpio.file_from(&guest, meta, md.len(), &mut f)
                .map_err(|e| with_host_path(e, &host))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(|source| InitramfsError::Read {
                path: host.clone(),
                source,
            })?;
            cpio.symlink(&guest, target.as_os_str().as_encoded_bytes(), meta)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = md.mode() & libc::S_IFMT;
            let rdev = md.rdev();
            let (maj, min) = (libc::major(rdev), libc::minor(rdev));
            cpio.node(&guest, kind, meta, (maj, min))?;
        }
        // Sockets are skipped: they mean nothing without their listener.
    }
    Ok(())
}

#[cfg(test)]
#[path = "initramfs_tests.rs"]
mod tests;
