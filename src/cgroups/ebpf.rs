//! cgroup v2 device control: an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup.

use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::Error;

pub(super) fn apply(_dir: &Path, _rules: &[LinuxDeviceCgroup]) -> Result<(), Error> {
    Err(Error::Unsupported {
        resource: "linux.resources.devices".into(),
        reason: "the cgroup v2 eBPF device program is not implemented yet".into(),
    })
}
