//! husk: a runc-compatible OCI runtime.
//!
//! Data flows one way: cli → spec (validated) → container (lifecycle,
//! state) → sandbox (effects) → sys. Nothing below calls back up.

pub mod cgroups;
pub mod cli;
pub mod container;
pub mod sandbox;
pub mod spec;
pub mod sys;
