//! The one home of unsafe and raw libc.
