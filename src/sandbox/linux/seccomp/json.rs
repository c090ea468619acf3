//! Field-naming checks on the raw JSON of `linux.seccomp`.
//!
//! oci-spec's enums reject an unknown action, operator, architecture or flag
//! during deserialization with a message that names a line and column, not
//! the field. [`check_json`] names the field:
//! `linux.seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_FOO"`.

use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde_json::Value;

use super::{invalid, Error};

const ROOT: &str = "linux.seccomp";

/// Checks every enum-valued field of a raw `linux.seccomp` object.
pub fn check_json(v: &Value) -> Result<(), Error> {
    let Some(o) = v.as_object() else {
        return Err(invalid(ROOT, "must be an object"));
    };
    known::<LinuxSeccompAction>(
        o.get("defaultAction"),
        || format!("{ROOT}.defaultAction"),
        "action",
    )?;
    for (i, a) in array(o.get("architectures")) {
        known::<Arch>(
            Some(a),
            || format!("{ROOT}.architectures[{i}]"),
            "architecture",
        )?;
    }
    for (i, f) in array(o.get("flags")) {
        known::<LinuxSeccompFilterFlag>(Some(f), || format!("{ROOT}.flags[{i}]"), "flag")?;
    }
    for (i, sc) in array(o.get("syscalls")) {
        known::<LinuxSeccompAction>(
            sc.get("action"),
            || format!("{ROOT}.syscalls[{i}].action"),
            "action",
        )?;
        for (j, arg) in array(sc.get("args")) {
            known::<LinuxSeccompOperator>(
                arg.get("op"),
                || format!("{ROOT}.syscalls[{i}].args[{j}].op"),
                "operator",
            )?;
        }
    }
    Ok(())
}

/// [`check_json`], then deserialization into oci-spec's type.
pub fn parse_json(v: &Value) -> Result<LinuxSeccomp, Error> {
    check_json(v)?;
    serde_json::from_value(v.clone()).map_err(|e| invalid(ROOT, e.to_string()))
}

fn array(v: Option<&Value>) -> impl Iterator<Item = (usize, &Value)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn known<T: FromStr>(
    v: Option<&Value>,
    field: impl Fn() -> String,
    what: &str,
) -> Result<(), Error> {
    match v {
        Some(Value::String(s)) if s.parse::<T>().is_err() => {
            Err(invalid(field(), format!("unknown {what} {s:?}")))
        }
        _ => Ok(()),
    }
}
