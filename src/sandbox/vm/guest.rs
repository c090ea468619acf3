//! What a container's guest is made of, from the host side: the kernel
//! command line and the per-container initramfs (rootfs + file binds +
//! agent as /init + its config). The lifecycle calls these in `create`,
//! before the sandbox closes, then hands the paths to `Vm::new`.

use super::channel::{AgentConfig, CONFIG_PATH};
use super::initramfs::{InitramfsBuilder, InitramfsError, Meta, Source};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The serial console on COM1, no PCI or ACPI to probe, an i8042 that is
/// only a reset line, and a reboot (never a halt) when the agent is done:
/// `reboot=k` resets through the i8042, `panic=-1` turns a panic into an
/// immediate reset, which husk reports as a guest panic when no exit
/// status came first.
pub const BASE_CMDLINE: &str = "console=ttyS0 quiet reboot=k panic=-1 pci=off \
     i8042.noaux i8042.nomux i8042.dumbkbd rdinit=/init";

pub fn kernel_cmdline(extra: Option<&str>) -> String {
    match extra.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => format!("{BASE_CMDLINE} {e}"),
        None => BASE_CMDLINE.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuestImageError {
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    #[error("bind mount {host} on {guest}: directory binds are not supported in a VM yet (needs virtio-fs or virtio-blk); only files are copied in")]
    DirectoryBind { host: PathBuf, guest: String },
    #[error("bind mount source {host}: {source}")]
    BindSource {
        host: PathBuf,
        source: std::io::Error,
    },
}

/// A file bind mount of the spec, copied into the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBind {
    pub host: PathBuf,
    pub guest: String,
}

/// Writes the container's initramfs to `out`; returns its size.
pub fn write_initramfs(
    out: &Path,
    rootfs: &Path,
    agent: &Path,
    config: &AgentConfig,
    binds: &[FileBind],
) -> Result<u64, GuestImageError> {
    let json = serde_json::to_vec(config).expect("agent config serializes");
    let mut b = InitramfsBuilder::new()
        .rootfs(rootfs)
        .extra("/init", Source::Host(agent.into()), Meta::new(0o755))
        .extra(CONFIG_PATH, Source::Bytes(json), Meta::new(0o600));
    for bind in binds {
        // Follows symlinks: the source is the host's own file, as a bind
        // mount would resolve it.
        let md = std::fs::metadata(&bind.host).map_err(|source| GuestImageError::BindSource {
            host: bind.host.clone(),
            source,
        })?;
        if md.is_dir() {
            return Err(GuestImageError::DirectoryBind {
                host: bind.host.clone(),
                guest: bind.guest.clone(),
            });
        }
        let meta = Meta {
            perm: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime().max(0) as u32,
        };
        b = b.extra(&bind.guest, Source::Host(bind.host.clone()), meta);
    }
    Ok(b.write_to_path(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_appends_extra() {
        assert!(kernel_cmdline(None).ends_with("rdinit=/init"));
        assert!(kernel_cmdline(Some(" loglevel=7 ")).ends_with("rdinit=/init loglevel=7"));
    }

    #[test]
    fn directory_binds_are_refused_by_name() {
        let d = std::env::temp_dir().join(format!("husk-guest-{}", std::process::id()));
        std::fs::create_dir_all(d.join("rootfs")).unwrap();
        let binds = [FileBind {
            host: d.clone(),
            guest: "/data".into(),
        }];
        let e = write_initramfs(
            &d.join("out.cpio"),
            &d.join("rootfs"),
            Path::new("/bin/sh"),
            &AgentConfig::default(),
            &binds,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/data") && e.contains("directory binds"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
