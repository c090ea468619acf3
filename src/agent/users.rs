//! /etc/passwd and /etc/group, read directly: the guest has no NSS, and
//! a static binary must not try to load NSS modules anyway.

use nix::unistd::Gid;

/// (name, uid, home) of the passwd line for `uid`.
fn passwd_entry(uid: u32) -> Option<(String, String)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    parse_passwd(&text, uid)
}

fn parse_passwd(text: &str, uid: u32) -> Option<(String, String)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

pub fn home_of(uid: u32) -> Option<String> {
    passwd_entry(uid)
        .map(|(_, home)| home)
        .filter(|h| !h.is_empty())
}

/// As runc: the primary gid, the groups of /etc/group that list the user
/// by name, then the spec's additionalGids.
pub fn supplementary_groups(uid: u32, gid: u32, additional: &[u32]) -> Vec<Gid> {
    let member_of = match (passwd_entry(uid), std::fs::read_to_string("/etc/group")) {
        (Some((name, _)), Ok(text)) => groups_listing(&text, &name),
        _ => Vec::new(),
    };
    let mut all = vec![gid];
    for g in member_of.into_iter().chain(additional.iter().copied()) {
        if !all.contains(&g) {
            all.push(g);
        }
    }
    all.into_iter().map(Gid::from_raw).collect()
}

fn groups_listing(text: &str, user: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let listed = f.len() >= 4 && f[3].split(',').any(|m| m.trim() == user);
            listed.then(|| f[2].parse().ok()).flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let pw = "root:x:0:0:root:/root:/bin/sh\n# junk\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(
            parse_passwd(pw, 1000),
            Some(("bob".into(), "/home/bob".into()))
        );
        assert_eq!(parse_passwd(pw, 5), None);
        let gr = "wheel:x:10:root,bob\naudio:x:29:bob\nbobs:x:1000:\nother:x:50:alice\n";
        assert_eq!(groups_listing(gr, "bob"), vec![10, 29]);
    }
}
