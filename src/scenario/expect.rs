//! Checking a step's outcome against its expectations: pure functions from what was observed to
//! the list of what did not hold (empty: the step passed).

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::model::Expect;

/// What a step observed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The action succeeded.
    pub ok: bool,
    /// The error's kind, when it failed.
    pub error_kind: Option<String>,
    /// The error's message.
    pub error_message: Option<String>,
    /// The call's one-line summary.
    pub summary: Option<String>,
    /// The reply as JSON.
    pub reply: Option<Value>,
    /// Unsolicited messages with the reply.
    pub events: usize,
    /// An exec's exit code.
    pub exit_code: Option<i32>,
    /// Data returned.
    pub data: Option<Bytes>,
    /// How long the step took (in the scenario's clock).
    pub elapsed: Duration,
    /// recv: the bytes read so far.
    pub received: Vec<u8>,
    /// recv: the connection ended.
    pub eof: bool,
    /// recv: frame types decoded from the bytes read.
    pub frame_types: Vec<String>,
    /// api: the HTTP status.
    pub status: Option<u16>,
    /// api: the response body.
    pub body: Option<String>,
}

/// Looks up a dotted path (`a.b.0.c`) in a JSON value.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = value;
    for part in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Whether an actual JSON value matches an expected TOML one. Numbers compare by value, and a
/// string expectation matches a number or boolean written the same way (protobuf's JSON form
/// writes 64-bit integers as strings).
pub fn matches(expected: &toml::Value, actual: &Value) -> bool {
    match (expected, actual) {
        (toml::Value::String(e), Value::String(a)) => e == a,
        (toml::Value::String(e), Value::Number(a)) => *e == a.to_string(),
        (toml::Value::String(e), Value::Bool(a)) => *e == a.to_string(),
        (toml::Value::Integer(e), Value::Number(a)) => {
            a.as_i64() == Some(*e) || a.as_f64() == Some(*e as f64)
        }
        (toml::Value::Integer(e), Value::String(a)) => a.parse::<i64>().ok() == Some(*e),
        (toml::Value::Float(e), Value::Number(a)) => a.as_f64() == Some(*e),
        (toml::Value::Boolean(e), Value::Bool(a)) => e == a,
        (toml::Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a))
        }
        (toml::Value::Table(e), Value::Object(a)) => e
            .iter()
            .all(|(k, e)| a.get(k).is_some_and(|a| matches(e, a))),
        _ => false,
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!("{}…", &s[..s.floor_char_boundary(200)])
    } else {
        s
    }
}

fn show_toml(v: &toml::Value) -> String {
    serde_json::to_value(v).map_or_else(|_| format!("{v:?}"), |j| j.to_string())
}

/// Whether the call-like expectations hold (`call`, `join`, `connect`, `send`, `api`).
/// `default_ok`: what `ok` is expected to be when the step says nothing about it.
pub fn check(e: &Expect, o: &Observed, default_ok: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let want_ok =
        e.ok.unwrap_or(if e.error.is_some() { false } else { default_ok });
    if want_ok != o.ok {
        if want_ok {
            bad.push(format!(
                "expected success, got {}: {}",
                o.error_kind.as_deref().unwrap_or("an error"),
                o.error_message.as_deref().unwrap_or("")
            ));
        } else {
            bad.push(format!(
                "expected {}, but it succeeded{}",
                e.error.as_deref().unwrap_or("a failure"),
                o.summary
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(kind) = &e.error
        && !o.ok
        && o.error_kind.as_deref() != Some(kind.as_str())
    {
        bad.push(format!(
            "expected error {kind}, got {}: {}",
            o.error_kind.as_deref().unwrap_or("none"),
            o.error_message.as_deref().unwrap_or("")
        ));
    }
    if let Some(text) = &e.error_contains
        && !o
            .error_message
            .as_deref()
            .unwrap_or("")
            .contains(text.as_str())
    {
        bad.push(format!(
            "expected the error to say {text:?}, it says {:?}",
            o.error_message.as_deref().unwrap_or("")
        ));
    }
    if let Some(text) = &e.summary_contains
        && !o.summary.as_deref().unwrap_or("").contains(text.as_str())
    {
        bad.push(format!(
            "expected the summary to contain {text:?}, it is {:?}",
            o.summary.as_deref().unwrap_or("")
        ));
    }
    let null = Value::Null;
    let reply = o.reply.as_ref().unwrap_or(&null);
    for (path, want) in &e.reply {
        match lookup(reply, path) {
            Some(got) if matches(want, got) => {}
            Some(got) => bad.push(format!(
                "reply.{path}: expected {}, got {}",
                show_toml(want),
                show(got)
            )),
            None => bad.push(format!("reply.{path}: missing (reply: {})", show(reply))),
        }
    }
    for path in &e.reply_has {
        if lookup(reply, path).is_none() {
            bad.push(format!("reply.{path}: missing (reply: {})", show(reply)));
        }
    }
    if let Some(code) = e.exit_code
        && o.exit_code != Some(code)
    {
        bad.push(format!("expected exit code {code}, got {:?}", o.exit_code));
    }
    if let Some(data) = &e.data {
        let got = o.data.as_deref().map(String::from_utf8_lossy);
        if got.as_deref() != Some(data.as_str()) {
            bad.push(format!("expected data {data:?}, got {got:?}"));
        }
    }
    if let Some(min) = e.events_min
        && o.events < min
    {
        bad.push(format!("expected at least {min} events, got {}", o.events));
    }
    if let Some(max) = e.events_max
        && o.events > max
    {
        bad.push(format!("expected at most {max} events, got {}", o.events));
    }
    if let Some(d) = e.not_before
        && o.elapsed < d.0
    {
        bad.push(format!(
            "expected it to take at least {:?}, it took {:?}",
            d.0, o.elapsed
        ));
    }
    if let Some(status) = e.status
        && o.status != Some(status)
    {
        bad.push(format!(
            "expected HTTP {status}, got {:?} {}",
            o.status,
            o.body.as_deref().unwrap_or("")
        ));
    }
    if let Some(text) = &e.body_contains
        && !o.body.as_deref().unwrap_or("").contains(text.as_str())
    {
        bad.push(format!(
            "expected the body to contain {text:?}, it is {:?}",
            o.body.as_deref().unwrap_or("")
        ));
    }
    bad
}

/// Whether a `recv` step's expectations hold on what has been read so far. `done`: the step's
/// time is up (then `silent` can hold, and anything still missing is a failure).
pub fn check_recv(e: &Expect, o: &Observed, done: bool) -> Option<Vec<String>> {
    let mut bad = Vec::new();
    if e.silent == Some(true) {
        if !o.received.is_empty() {
            bad.push(format!(
                "expected nothing, got {} bytes: {:?}",
                o.received.len(),
                String::from_utf8_lossy(&o.received[..o.received.len().min(80)])
            ));
            return Some(bad);
        }
        return done.then_some(bad);
    }
    let text = String::from_utf8_lossy(&o.received);
    if let Some(want) = &e.contains
        && !text.contains(want.as_str())
    {
        bad.push(format!("expected {want:?} in what arrived: {text:?}"));
    }
    if let Some(unwanted) = &e.excludes
        && text.contains(unwanted.as_str())
    {
        bad.push(format!(
            "expected no {unwanted:?} in what arrived: {text:?}"
        ));
        return Some(bad);
    }
    for t in &e.frame_types {
        if !o.frame_types.iter().any(|f| f == t) {
            bad.push(format!(
                "expected a {t} frame, got [{}]",
                o.frame_types.join(", ")
            ));
        }
    }
    if e.eof == Some(true) && !o.eof {
        bad.push("expected the connection to end".into());
    }
    if e.eof == Some(false) && o.eof {
        bad.push("the connection ended".into());
    }
    if let Some(kind) = &e.error
        && o.error_kind.as_deref() != Some(kind.as_str())
    {
        bad.push(format!(
            "expected error {kind}, got {}",
            o.error_kind.as_deref().unwrap_or("none")
        ));
    }
    let nothing_asked =
        e.contains.is_none() && e.frame_types.is_empty() && e.eof.is_none() && e.error.is_none();
    if nothing_asked && o.received.is_empty() && !o.eof {
        bad.push("expected bytes, nothing arrived".into());
    }
    if bad.is_empty() {
        // `eof = false`, and `excludes` with nothing to wait for, can only be known at the end.
        let only_excludes = e.excludes.is_some()
            && e.contains.is_none()
            && e.frame_types.is_empty()
            && e.eof.is_none();
        if (e.eof == Some(false) || only_excludes) && !done {
            return None;
        }
        return Some(bad);
    }
    if done || o.eof { Some(bad) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Dur;

    fn reply() -> Observed {
        Observed {
            ok: true,
            summary: Some("pong seq=1".into()),
            reply: Some(serde_json::json!({"pong": {"sequence": 1, "id": "18446744073709551615"}})),
            ..Observed::default()
        }
    }

    #[test]
    fn fields_match_by_dotted_path() {
        let mut e = Expect::default();
        e.reply
            .insert("pong.sequence".into(), toml::Value::Integer(1));
        e.reply.insert(
            "pong.id".into(),
            toml::Value::String("18446744073709551615".into()),
        );
        assert!(check(&e, &reply(), true).is_empty());
        e.reply
            .insert("pong.sequence".into(), toml::Value::Integer(2));
        let bad = check(&e, &reply(), true);
        assert_eq!(bad, ["reply.pong.sequence: expected 2, got 1"]);
        e.reply.clear();
        e.reply_has.push("pong.version".into());
        assert_eq!(check(&e, &reply(), true).len(), 1);
    }

    #[test]
    fn an_error_kind_implies_failure_and_must_match() {
        let e = Expect {
            error: Some("timed_out".into()),
            ..Expect::default()
        };
        let bad = check(&e, &reply(), true);
        assert!(
            bad[0].contains("expected timed_out, but it succeeded"),
            "{bad:?}"
        );
        let failed = Observed {
            ok: false,
            error_kind: Some("busy".into()),
            error_message: Some("socket is busy".into()),
            ..Observed::default()
        };
        assert_eq!(check(&e, &failed, true).len(), 1);
        let timed_out = Observed {
            error_kind: Some("timed_out".into()),
            elapsed: Duration::from_secs(30),
            ..failed
        };
        let e = Expect {
            not_before: Some(Dur(Duration::from_secs(30))),
            ..e
        };
        assert!(check(&e, &timed_out, true).is_empty());
    }

    #[test]
    fn recv_waits_until_its_expectation_holds_or_time_is_up() {
        let e = Expect {
            contains: Some("OK ".into()),
            ..Expect::default()
        };
        let mut o = Observed::default();
        assert_eq!(check_recv(&e, &o, false), None);
        o.received = b"OK 1073741824\n".to_vec();
        assert_eq!(check_recv(&e, &o, false), Some(vec![]));
        let silent = Expect {
            silent: Some(true),
            ..Expect::default()
        };
        assert_eq!(check_recv(&silent, &Observed::default(), false), None);
        assert_eq!(
            check_recv(&silent, &Observed::default(), true),
            Some(vec![])
        );
        assert_eq!(check_recv(&silent, &o, false).map(|b| b.len()), Some(1));
        let eof = Expect {
            eof: Some(true),
            ..Expect::default()
        };
        assert_eq!(
            check_recv(&eof, &Observed::default(), true).map(|b| b.len()),
            Some(1)
        );
    }
}
