//! What is mounted where, from `/proc/self/mountinfo` (one parser for every role).

use super::Probe;
use crate::error::{Error, Result};

pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of mountinfo: what is mounted (`/dev/drbd0`, `host:/export`), where, as which type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub mount_point: String,
    pub fs_type: String,
}

/// Every mount of this machine; an absent mountinfo (a `--root` that is not a live system) is none.
pub fn mounts(probe: &dyn Probe) -> Result<Vec<Mount>> {
    let text = probe.read_string(MOUNTINFO)?.unwrap_or_default();
    text.lines().filter(|l| !l.trim().is_empty()).map(parse_line).collect()
}

/// The mount on `mount_point` (the last one: a later mount hides an earlier one there).
pub fn mounted_on(probe: &dyn Probe, mount_point: &str) -> Result<Option<Mount>> {
    let want = mount_point.trim_end_matches('/');
    Ok(mounts(probe)?.into_iter().rev().find(|m| m.mount_point == want))
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue` (proc(5)).
fn parse_line(line: &str) -> Result<Mount> {
    let bad = || Error::step(format!("{MOUNTINFO}: cannot parse the line {line:?}"));
    let (pre, post) = line.split_once(" - ").ok_or_else(bad)?;
    let mount_point = pre.split_whitespace().nth(4).ok_or_else(bad)?;
    let mut post = post.split_whitespace();
    let (fs_type, source) = (post.next().ok_or_else(bad)?, post.next().ok_or_else(bad)?);
    Ok(Mount { source: unescape(source), mount_point: unescape(mount_point), fs_type: unescape(fs_type) })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::FakeSystem;

    #[test]
    fn parses_mountinfo_with_escapes_and_nfs() {
        let fake = FakeSystem::new("web-1");
        fake.add_file(
            MOUNTINFO,
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             40 22 147:0 / /var/lib/my\\040sql rw - ext4 /dev/drbd0 rw\n\
             51 22 0:48 / /var/www/wordpress/wp-content/uploads rw,relatime shared:30 - nfs4 \
             st1.file.core.windows.net:/st1/wpcontent rw,vers=4.1,sec=sys\n",
            0o444,
        );
        let all = mounts(&fake).unwrap();
        assert_eq!(all[1].mount_point, "/var/lib/my sql");
        let nfs = mounted_on(&fake, "/var/www/wordpress/wp-content/uploads/").unwrap().unwrap();
        assert_eq!((nfs.source.as_str(), nfs.fs_type.as_str()), ("st1.file.core.windows.net:/st1/wpcontent", "nfs4"));
        assert_eq!(mounted_on(&fake, "/var/www").unwrap(), None);
    }

    #[test]
    fn a_line_that_does_not_parse_is_an_error() {
        let fake = FakeSystem::new("web-1");
        fake.add_file(MOUNTINFO, "22 1 254:0 / / rw\n", 0o444);
        let e = mounts(&fake).unwrap_err();
        assert!(e.to_string().contains("cannot parse"), "{e}");
    }
}
