//! `delete`.

use crate::container::{lifecycle, Store};
use anyhow::Result;

#[derive(Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill a running container first
    pub force: bool,
}

pub fn delete(store: &Store, a: &DeleteArgs) -> Result<i32> {
    lifecycle::delete(store, &a.id, a.force)?;
    Ok(0)
}
