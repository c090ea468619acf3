//! process.user: groups, gid, uid (keeping capabilities across the
//! switch), umask, and HOME from the image's /etc/passwd.

use crate::sys::{check, Context, Result};
use oci_spec::runtime::User;

pub fn switch(u: &User) -> Result<()> {
    // SAFETY: prctl/setgroups/setres[ug]id with plain arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as _).ctx("PR_SET_KEEPCAPS")?;
        let groups: Vec<libc::gid_t> = u.additional_gids().clone().unwrap_or_default();
        // setgroups is denied in a user namespace whose setgroups is "deny".
        let r = libc::setgroups(groups.len(), groups.as_ptr());
        if r != 0 && !(groups.is_empty() && nix::errno::Errno::last() == nix::errno::Errno::EPERM) {
            return Err(nix::errno::Errno::last())
                .with_ctx(|| format!("process.user.additionalGids {groups:?}: setgroups"));
        }
        check(libc::setresgid(u.gid(), u.gid(), u.gid()) as _)
            .with_ctx(|| format!("process.user.gid {}: setgid", u.gid()))?;
        check(libc::setresuid(u.uid(), u.uid(), u.uid()) as _)
            .with_ctx(|| format!("process.user.uid {}: setuid", u.uid()))?;
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) as _).ctx("PR_SET_KEEPCAPS")?;
        libc::umask(u.umask().unwrap_or(0o022) as libc::mode_t);
    }
    Ok(())
}

/// The home directory of `uid` in an /etc/passwd text.
pub fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// Look up `name` (a user or group name) → id in a passwd/group text.
pub fn id_of(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookups() {
        let pw =
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
        assert_eq!(home_of(pw, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(pw, 7), None);
        assert_eq!(id_of(pw, "nobody"), Some(65534));
    }
}
