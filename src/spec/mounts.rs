//! fstab-style mount options → flags, propagation and data, as runc parses
//! them. Pure: no syscalls.

use super::Error;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOpts {
    /// Flags for mount(2).
    pub flags: libc::c_ulong,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<libc::c_ulong>,
    /// Filesystem-specific options, comma-joined.
    pub data: String,
    /// `rro`: recursive read-only via mount_setattr.
    pub recursive_ro: bool,
}

impl MountOpts {
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
}

/// Parse one mount's options; `field` names it in errors.
pub fn parse(options: &[String], typ: &str, field: &str) -> Result<MountOpts, Error> {
    let mut m = MountOpts::default();
    if typ == "bind" {
        m.flags |= libc::MS_BIND;
    }
    let mut data = Vec::new();
    for o in options {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match o.as_str() {
            "defaults" => (0, 0),
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "suid" => (0, libc::MS_NOSUID),
            "nosuid" => (libc::MS_NOSUID, 0),
            "dev" => (0, libc::MS_NODEV),
            "nodev" => (libc::MS_NODEV, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "noexec" => (libc::MS_NOEXEC, 0),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "rro" => {
                m.recursive_ro = true;
                (0, 0)
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable" => {
                m.propagation.push(propagation_flag(o).expect("listed above"));
                (0, 0)
            }
            "idmap" | "ridmap" => {
                return Err(Error::field(
                    field,
                    format!("option {o:?}: id-mapped mounts are not supported by husk yet"),
                ))
            }
            "tmpcopyup" => {
                return Err(Error::field(field, "option \"tmpcopyup\" is not supported by husk yet"))
            }
            other if other.starts_with("rro") || other.starts_with("rrw") || other.starts_with("rnosuid") => {
                return Err(Error::field(
                    field,
                    format!("option {other:?}: recursive mount attributes other than rro are not supported yet"),
                ))
            }
            other => {
                if other.is_empty() {
                    continue;
                }
                data.push(other.to_string());
                (0, 0)
            }
        };
        m.flags = (m.flags | set) & !clear;
    }
    if m.flags & libc::MS_BIND == 0 && m.recursive_ro {
        // rro on a non-bind mount is just ro on its own tree.
        m.flags |= libc::MS_RDONLY;
    }
    m.data = data.join(",");
    Ok(m)
}

/// The propagation flags for a `rootfsPropagation`-style word.
pub fn propagation_flag(word: &str) -> Option<libc::c_ulong> {
    Some(match word {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_runc_default_mounts() {
        let m = parse(
            &s(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
            "tmpfs",
            "m",
        )
        .unwrap();
        assert_eq!(m.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(m.data, "mode=755,size=65536k");
        let m = parse(&s(&["rbind", "ro", "rslave"]), "none", "m").unwrap();
        assert!(m.is_bind());
        assert_eq!(m.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(m.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        let m = parse(&s(&["ro", "rw"]), "bind", "m").unwrap();
        assert_eq!(m.flags, libc::MS_BIND);
    }

    #[test]
    fn refuses_idmap_clearly() {
        let e = parse(&s(&["idmap"]), "bind", "mounts[2]").unwrap_err();
        assert!(
            e.to_string().starts_with("mounts[2]: option \"idmap\""),
            "{e}"
        );
    }
}
