//! Sandboxes: the namespace backend (linux/) and the microVM backend (vm/).
pub mod linux;
pub mod vm;
