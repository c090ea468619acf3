//! The lifecycle shared by every sandbox: statuses and their legal
//! transitions, state.json, the root dir, hooks.

pub mod hooks;
pub mod lifecycle;
pub mod notify;
pub mod state;
pub mod status;
pub mod store;

pub use state::State;
pub use status::Status;
pub use store::Store;
