//! The lifecycle shared by every sandbox.
