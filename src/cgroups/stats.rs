//! Statistics in the shape of runc's `events --stats`.

use serde::{Deserialize, Serialize};

use super::paths::CgroupPaths;
use super::Error;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Stats {}

pub(super) fn collect(_p: &CgroupPaths) -> Result<Stats, Error> {
    Ok(Stats {})
}
