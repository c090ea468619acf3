//! state.json: the OCI state plus what husk needs to find the sandbox
//! again.

use super::status::Status;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the init (0 once stopped, in what `state` prints).
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, when create finished.
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// /proc/<pid>/stat field 22 of the init: guards against pid reuse.
    pub init_start_time: u64,
    /// Which sandbox runs it: "linux" or "vm".
    #[serde(default = "linux")]
    pub sandbox: String,
    /// The validated spec, for exec, hooks and delete.
    pub config: Spec,
    /// The cgroups the container lives in (their manager's own form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<serde_json::Value>,
}

fn linux() -> String {
    "linux".into()
}

/// The OCI state document as `husk state` prints it (runc's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

impl State {
    pub fn report(&self, status: Status) -> Report {
        Report {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }

    /// The state handed to hooks on stdin (the runtime spec's shape).
    pub fn hook_json(&self, status: Status) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct HookState<'a> {
            oci_version: &'a str,
            id: &'a str,
            status: Status,
            pid: i32,
            bundle: &'a PathBuf,
            annotations: &'a HashMap<String, String>,
        }
        serde_json::to_string(&HookState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            annotations: &self.annotations,
        })
        .expect("serializable")
    }
}
