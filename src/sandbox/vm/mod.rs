//! The KVM microVM sandbox.
