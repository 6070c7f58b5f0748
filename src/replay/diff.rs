//! Comparing live frames with recorded ones, with field-level normalisation.
//!
//! Field paths are the JSON paths of the decoded message: object keys joined by `.`, array
//! elements as `[i]` (`telemetry.disks[0].device`). An ignore pattern with a `.` (or `[`) is a
//! path from the message's root and ignores that field and everything under it; a bare name
//! (`timestamp`) ignores every field of that name at any depth.
//!
//! Ignored by default ([`default_ignores`]): quantix `message_id`, `timestamp`,
//! `uptime_seconds`, `duration_ms`, `modified_at` and the telemetry values that change by
//! themselves (CPU, memory in use, load, processes, disks, interfaces, swap in use); qga `id`;
//! nothing for fcexec and the others. `--strict` ignores nothing and also compares each frame's
//! length on the wire: since both sides go through the same deterministic codec, equal messages
//! with equal lengths are equal bytes.

use serde_json::Value;

use crate::wire::protocol::Protocol;

/// How to compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Field patterns to ignore (see the module docs).
    pub ignore: Vec<String>,
    /// Compare everything, and wire lengths.
    pub strict: bool,
}

impl DiffOptions {
    /// The protocol's default ignores plus `extra`.
    pub fn for_protocol(protocol: &Protocol, extra: &[String], strict: bool) -> Self {
        let mut ignore: Vec<String> = if strict {
            Vec::new()
        } else {
            default_ignores(protocol)
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        ignore.extend(extra.iter().cloned());
        Self { ignore, strict }
    }

    fn ignored(&self, path: &str, key: &str) -> bool {
        self.ignore.iter().any(|p| {
            if p.contains('.') || p.contains('[') {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            } else {
                key == p
            }
        })
    }
}

/// The fields ignored by default for a protocol's frames.
pub fn default_ignores(protocol: &Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => &[
            "message_id",
            "timestamp",
            "uptime_seconds",
            "duration_ms",
            "modified_at",
            "telemetry.cpu_usage_percent",
            "telemetry.memory_used_bytes",
            "telemetry.memory_available_bytes",
            "telemetry.load_avg_1",
            "telemetry.load_avg_5",
            "telemetry.load_avg_15",
            "telemetry.process_count",
            "telemetry.disks",
            "telemetry.interfaces",
            "telemetry.swap_used_bytes",
        ],
        Protocol::Qga => &["id"],
        _ => &[],
    }
}

/// One difference between a recorded frame and a live one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiffEntry {
    /// A field differs (`None`: absent on that side).
    Field {
        /// The recorded frame's number among the guest's frames.
        n: usize,
        /// Its type.
        type_name: String,
        /// The field's path.
        path: String,
        /// The recorded value.
        recorded: Option<Value>,
        /// The live value.
        live: Option<Value>,
    },
    /// A live frame of another type where the recorded one was.
    Type {
        /// The recorded frame's number.
        n: usize,
        /// The recorded type.
        recorded: String,
        /// The live type.
        live: String,
    },
    /// No live frame for a recorded one.
    Missing {
        /// The recorded frame's number.
        n: usize,
        /// Its type.
        type_name: String,
    },
    /// A live frame with no recorded counterpart.
    Extra {
        /// Its type.
        type_name: String,
        /// After which recorded host frame (its type), if any.
        after: Option<String>,
    },
}

fn show(v: &Option<Value>) -> String {
    v.as_ref()
        .map_or_else(|| "(absent)".to_string(), Value::to_string)
}

impl std::fmt::Display for DiffEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Field {
                n,
                type_name,
                path,
                recorded,
                live,
            } => write!(
                f,
                "#{n} {type_name}: {path}: recorded {}, live {}",
                show(recorded),
                show(live)
            ),
            Self::Type { n, recorded, live } => {
                write!(f, "#{n} {recorded}: type: recorded {recorded}, live {live}")
            }
            Self::Missing { n, type_name } => {
                write!(f, "#{n} {type_name}: missing (no live frame)")
            }
            Self::Extra { type_name, after } => match after {
                Some(a) => write!(f, "+ {type_name}: extra live frame (after {a})"),
                None => write!(f, "+ {type_name}: extra live frame"),
            },
        }
    }
}

/// The result of a host replay.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Recorded host frames sent.
    pub sent: usize,
    /// Recorded guest frames compared.
    pub compared: usize,
    /// The differences, in recorded order.
    pub diffs: Vec<DiffEntry>,
}

impl Report {
    /// Whether the live replies matched.
    pub fn matches(&self) -> bool {
        self.diffs.is_empty()
    }
}

/// Compares one recorded frame (number `n`) with a live one, appending differences to `out`.
#[allow(clippy::too_many_arguments)]
pub fn compare_frame(
    opts: &DiffOptions,
    n: usize,
    recorded_type: &str,
    recorded: &Value,
    recorded_len: u64,
    live_type: &str,
    live: &Value,
    live_len: u64,
    out: &mut Vec<DiffEntry>,
) {
    if recorded_type != live_type {
        out.push(DiffEntry::Type {
            n,
            recorded: recorded_type.to_string(),
            live: live_type.to_string(),
        });
        return;
    }
    let mut push = |path: &str, r: Option<&Value>, l: Option<&Value>| {
        out.push(DiffEntry::Field {
            n,
            type_name: recorded_type.to_string(),
            path: path.to_string(),
            recorded: r.cloned(),
            live: l.cloned(),
        })
    };
    walk(opts, "", Some(recorded), Some(live), &mut push);
    if opts.strict && recorded_len != live_len {
        push(
            "(wire length)",
            Some(&Value::from(recorded_len)),
            Some(&Value::from(live_len)),
        );
    }
}

/// Where [`walk`] reports a difference: path, recorded value, live value.
type Push<'a> = dyn FnMut(&str, Option<&Value>, Option<&Value>) + 'a;

fn walk(opts: &DiffOptions, path: &str, r: Option<&Value>, l: Option<&Value>, push: &mut Push<'_>) {
    match (r, l) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if opts.ignored(&child, k) {
                    continue;
                }
                walk(opts, &child, a.get(k), b.get(k), push);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                let child = format!("{path}[{i}]");
                if opts.ignored(&child, "") {
                    continue;
                }
                walk(opts, &child, a.get(i), b.get(i), push);
            }
        }
        (a, b) if a != b => push(if path.is_empty() { "(message)" } else { path }, a, b),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn diff(opts: &DiffOptions, r: Value, l: Value) -> Vec<String> {
        let mut out = Vec::new();
        compare_frame(opts, 3, "pong", &r, 10, "pong", &l, 11, &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn default_ignores_hide_ids_and_times_but_not_content() {
        let opts = DiffOptions::for_protocol(&Protocol::Quantix, &[], false);
        let r = json!({"message_id": "1", "timestamp": "a", "pong": {"uptime_seconds": 1, "version": "x"}});
        let l = json!({"message_id": "9", "timestamp": "b", "pong": {"uptime_seconds": 7, "version": "y"}});
        assert_eq!(
            diff(&opts, r, l),
            vec![r#"#3 pong: pong.version: recorded "x", live "y""#]
        );
    }

    #[test]
    fn strict_compares_everything_and_the_length() {
        let opts = DiffOptions::for_protocol(&Protocol::Quantix, &[], true);
        let r = json!({"message_id": "1", "pong": {}});
        let l = json!({"message_id": "2", "pong": {}});
        let d = diff(&opts, r, l);
        assert_eq!(
            d,
            vec![
                r#"#3 pong: message_id: recorded "1", live "2""#,
                "#3 pong: (wire length): recorded 10, live 11"
            ]
        );
    }

    #[test]
    fn ignore_takes_dotted_paths_and_bare_names() {
        let r = json!({"a": {"b": 1, "c": [1, 2]}, "d": {"b": 1}});
        let l = json!({"a": {"b": 2, "c": [1, 3, 4]}, "d": {"b": 2}});
        let opts = DiffOptions::for_protocol(&Protocol::Raw, &["a.c".into()], false);
        assert_eq!(
            diff(&opts, r.clone(), l.clone()),
            vec![
                "#3 pong: a.b: recorded 1, live 2",
                "#3 pong: d.b: recorded 1, live 2"
            ]
        );
        let opts = DiffOptions::for_protocol(&Protocol::Raw, &["b".into()], false);
        assert_eq!(
            diff(&opts, r, l),
            vec![
                "#3 pong: a.c[1]: recorded 2, live 3",
                "#3 pong: a.c[2]: recorded (absent), live 4"
            ]
        );
    }
}
