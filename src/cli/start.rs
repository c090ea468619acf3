//! `start`.

use crate::container::{lifecycle, Store};
use anyhow::Result;

#[derive(Debug)]
pub struct StartArgs {
    pub id: String,
}

pub fn start(store: &Store, a: &StartArgs) -> Result<i32> {
    lifecycle::start(store, &a.id)?;
    Ok(0)
}
