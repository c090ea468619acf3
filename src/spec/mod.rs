//! config.json → checked types.
