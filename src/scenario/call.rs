//! A `call` step: one request through the built-in host client (recorded by the inline tap), or
//! through the user's host client command (`--host-cmd`), observed for the expectations.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::expect::Observed;
use super::model::{Host, Step};
use crate::host::retry::RetryPolicy;
use crate::host::{CallOp, DialOptions, call_once};
use crate::io::Endpoint;
use crate::wire::protocol::Protocol;

/// Largest output kept from a host command.
pub const MAX_COMMAND_OUTPUT: usize = 1 << 20;

/// The call a step makes.
pub fn op_of(step: &Step) -> CallOp {
    match step.call.as_deref().unwrap_or("ping") {
        "exec" => CallOp::Exec {
            program: step.program.clone().unwrap_or_default(),
            args: step.args.clone().unwrap_or_default(),
            timeout: step.timeout.map(|d| d.0),
        },
        "read" => CallOp::Read {
            path: step.path.clone().unwrap_or_default(),
        },
        "write" => CallOp::Write {
            path: step.path.clone().unwrap_or_default(),
            data: Bytes::from(step.text.clone().unwrap_or_default().into_bytes()),
        },
        "shutdown" => CallOp::Shutdown {
            mode: step.mode.clone().unwrap_or_else(|| "poweroff".into()),
        },
        "info" => CallOp::Info,
        "raw" => CallOp::Raw {
            json: step.json.clone().unwrap_or_default(),
        },
        _ => CallOp::Ping,
    }
}

/// The host client's dial options for a scenario.
pub fn dial_options(host: &Host, protocol: &Protocol) -> DialOptions {
    let mut o = if *protocol == Protocol::Volant {
        crate::host::volant::default_options()
    } else {
        DialOptions::default()
    };
    if let Some(n) = host.attempts {
        o.retry = o.retry.with_attempts(n);
    }
    if let Some(d) = host.backoff {
        o.retry = RetryPolicy {
            initial: d.0,
            ..o.retry
        };
    }
    if let Some(d) = host.request_deadline {
        o.deadlines.request = Some(d.0);
        o.deadlines.ping = Some(d.0);
    }
    if let Some(d) = host.connect_deadline {
        o.deadlines.connect = Some(d.0);
        o.deadlines.handshake = Some(d.0);
    }
    o
}

/// Makes the call with the built-in client, within `within`.
pub async fn builtin(
    protocol: Protocol,
    endpoint: Endpoint,
    opts: DialOptions,
    op: CallOp,
    within: Duration,
) -> Observed {
    let start = Instant::now();
    let result = tokio::time::timeout(within, call_once(&protocol, &endpoint, &opts, &op)).await;
    let elapsed = start.elapsed();
    match result {
        Ok(Ok(out)) => Observed {
            ok: true,
            summary: Some(out.summary),
            reply: Some(out.reply),
            events: out.events.len(),
            exit_code: out.exit_code,
            data: out.data,
            elapsed,
            ..Observed::default()
        },
        Ok(Err(e)) => Observed {
            ok: false,
            error_kind: Some(e.kind().to_string()),
            error_message: Some(e.to_string()),
            elapsed,
            ..Observed::default()
        },
        Err(_) => Observed {
            ok: false,
            error_kind: Some("step_deadline".into()),
            error_message: Some(format!(
                "no outcome within the step's {within:?} (the client's own deadlines did not fire)"
            )),
            elapsed,
            ..Observed::default()
        },
    }
}

/// Quotes `s` for `/bin/sh`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `{args}` of a host command: the operation's arguments as `guestwire call` takes them.
pub fn call_args(op: &CallOp) -> String {
    let q = |s: &str| shell_quote(s);
    match op {
        CallOp::Ping | CallOp::Info => String::new(),
        CallOp::Exec { program, args, .. } => std::iter::once(program.as_str())
            .chain(args.iter().map(String::as_str))
            .map(q)
            .collect::<Vec<_>>()
            .join(" "),
        CallOp::Read { path } => q(path),
        CallOp::Write { path, data } => {
            format!("{} --data {}", q(path), q(&String::from_utf8_lossy(data)))
        }
        CallOp::Shutdown { mode } => format!("--mode {}", q(mode)),
        CallOp::Raw { json } => q(json),
    }
}

/// Fills a host command's placeholders.
pub fn host_command_line(
    template: &str,
    endpoint: &Endpoint,
    protocol: &Protocol,
    op: &CallOp,
) -> String {
    let (socket, port) = match endpoint {
        Endpoint::Hvsock { path, port } => (path.display().to_string(), port.to_string()),
        other => (
            other
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            String::new(),
        ),
    };
    template
        .replace("{endpoint}", &shell_quote(&endpoint.to_string()))
        .replace("{socket}", &shell_quote(&socket))
        .replace("{port}", &port)
        .replace("{protocol}", &protocol.to_string())
        .replace("{op}", op.name())
        .replace("{args}", &call_args(op))
}

/// Runs the user's host client for one call, within `within` (real time: it is a process).
/// Exit 0 is success; standard output, when it is one JSON object like `guestwire call --json`
/// prints (`ok`, `summary`, `reply`, `events`, `exit_code`, `error.kind`, `error.message`),
/// gives the fields.
pub async fn command(line: String, within: Duration) -> Observed {
    let start = Instant::now();
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return Observed {
                error_kind: Some("host_command".into()),
                error_message: Some(format!("cannot run {line:?}: {e}")),
                ..Observed::default()
            };
        }
    };
    let out = tokio::time::timeout(within, child.wait_with_output()).await;
    let elapsed = start.elapsed();
    let out = match out {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            return Observed {
                error_kind: Some("host_command".into()),
                error_message: Some(format!("{line:?}: {e}")),
                elapsed,
                ..Observed::default()
            };
        }
        Err(_) => {
            return Observed {
                error_kind: Some("step_deadline".into()),
                error_message: Some(format!("the host command ran over the step's {within:?}")),
                elapsed,
                ..Observed::default()
            };
        }
    };
    let stdout = &out.stdout[..out.stdout.len().min(MAX_COMMAND_OUTPUT)];
    let json: Option<serde_json::Value> = std::str::from_utf8(stdout)
        .ok()
        .and_then(|s| s.lines().rev().find(|l| l.trim_start().starts_with('{')))
        .and_then(|l| serde_json::from_str(l).ok());
    let ok = out.status.success();
    let stderr = String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(4096)]).into_owned();
    let mut o = Observed {
        ok,
        elapsed,
        ..Observed::default()
    };
    if let Some(v) = json {
        o.summary = v.get("summary").and_then(|s| s.as_str()).map(String::from);
        o.reply = v.get("reply").cloned();
        o.events = v
            .get("events")
            .and_then(|e| e.as_array())
            .map_or(0, Vec::len);
        o.exit_code = v
            .get("exit_code")
            .and_then(serde_json::Value::as_i64)
            .and_then(|c| i32::try_from(c).ok());
        if let Some(e) = v.get("error") {
            o.error_kind = e.get("kind").and_then(|k| k.as_str()).map(String::from);
            o.error_message = e.get("message").and_then(|k| k.as_str()).map(String::from);
        }
    }
    if !ok {
        o.error_kind
            .get_or_insert_with(|| "host_command_failed".into());
        o.error_message.get_or_insert_with(|| {
            format!(
                "the host command exited with {}: {}",
                out.status,
                stderr.trim()
            )
        });
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_command_lines_are_quoted_for_the_shell() {
        let op = CallOp::Exec {
            program: "echo".into(),
            args: vec!["it's".into(), "a b".into()],
            timeout: None,
        };
        let ep: Endpoint = "hvsock:/tmp/x y/v.sock:1024".parse().expect("endpoint");
        let line = host_command_line(
            "client --connect {endpoint} -p {protocol} {op} {args} # {socket} {port}",
            &ep,
            &Protocol::Fcexec,
            &op,
        );
        assert_eq!(
            line,
            "client --connect 'hvsock:/tmp/x y/v.sock:1024' -p fcexec exec echo 'it'\\''s' 'a b' # '/tmp/x y/v.sock' 1024"
        );
    }

    #[tokio::test]
    async fn a_host_command_s_json_line_gives_the_fields() {
        let o = command(
            r#"echo noise; echo '{"ok":false,"error":{"kind":"timed_out","message":"late"}}'; exit 1"#
                .into(),
            Duration::from_secs(10),
        )
        .await;
        assert!(!o.ok);
        assert_eq!(o.error_kind.as_deref(), Some("timed_out"));
        let o = command("exit 3".into(), Duration::from_secs(10)).await;
        assert_eq!(o.error_kind.as_deref(), Some("host_command_failed"));
    }
}
