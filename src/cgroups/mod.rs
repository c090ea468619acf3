//! cgroups: layout detection (v1, v2, hybrid) and one Manager trait.
