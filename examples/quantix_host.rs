//! A small standalone quantix host client, as a user's would be: plain blocking std sockets and
//! guestwire's sans-IO wire codec (QTX1 framing), one request per run, a 5 s deadline, dial
//! retries (5 attempts, 100 ms doubling). It prints one JSON line in `guestwire call --json`'s
//! shape and exits 0 when the call succeeded, 1 when it failed, 2 on a usage error — which is
//! the contract `guestwire test --host-cmd` runs a host client under:
//!
//! ```text
//! guestwire test --protocol quantix \
//!     --host-cmd 'target/debug/examples/quantix_host {socket} {op} {args}'
//! ```
//!
//! Operations: `ping`, `exec PROGRAM [ARGS…]`. Frames that are not the reply (AgentReady,
//! telemetry, replies to other ids) are skipped; bytes that do not decode are skipped too (QTX1
//! resynchronises on the next magic).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde_json::{Value, json};

use guestwire::wire::Decoder;
use guestwire::wire::quantix::{
    AgentMessage, ExecuteRequest, Payload, PingRequest, QuantixDecoder, QuantixEncoder,
};

/// The whole call's deadline.
const DEADLINE: Duration = Duration::from_secs(5);

fn dial(path: &str) -> io::Result<UnixStream> {
    let mut delay = Duration::from_millis(100);
    let mut last = None;
    for _ in 0..5 {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(delay);
        delay *= 2;
    }
    Err(last.unwrap_or_else(|| io::Error::other("no attempt")))
}

/// Sends `request` and waits for the message that answers it (same message id).
fn call(path: &str, request: AgentMessage) -> Result<AgentMessage, (&'static str, String)> {
    let start = Instant::now();
    let mut s = dial(path).map_err(|e| ("connect", e.to_string()))?;
    let frame = QuantixEncoder::new()
        .to_bytes(&request)
        .map_err(|e| ("invalid", e.to_string()))?;
    s.write_all(&frame).map_err(|e| ("io", e.to_string()))?;
    let mut decoder = QuantixDecoder::new();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(item) = decoder.decode(&mut buf) {
            if let Ok(f) = item
                && f.message.message_id == request.message_id
            {
                return Ok(f.message);
            }
        }
        let left = DEADLINE.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(("timed_out", format!("no reply within {DEADLINE:?}")));
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| ("io", e.to_string()))?;
        match s.read(&mut chunk) {
            Ok(0) => return Err(("closed", "the agent closed the connection".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(("timed_out", format!("no reply within {DEADLINE:?}")));
            }
            Err(e) => return Err(("io", e.to_string())),
        }
    }
}

fn run(args: &[String]) -> Result<Value, (&'static str, String)> {
    let [path, op, rest @ ..] = args else {
        return Err((
            "usage",
            "usage: quantix_host SOCKET ping|exec PROGRAM [ARGS…]".into(),
        ));
    };
    let path = path.strip_prefix("unix:").unwrap_or(path);
    match (op.as_str(), rest) {
        ("ping", []) => {
            let reply = call(path, AgentMessage::new("1", PingRequest { sequence: 1 }))?;
            match reply.payload {
                Some(Payload::Pong(p)) => Ok(json!({
                    "summary": format!("pong seq={}", p.sequence),
                    "reply": { "sequence": p.sequence, "version": p.version },
                })),
                other => Err(("protocol", format!("expected a pong, got {other:?}"))),
            }
        }
        ("exec", [program, args @ ..]) => {
            let request = ExecuteRequest {
                command: program.clone(),
                args: args.to_vec(),
                timeout_seconds: 5,
                wait_for_exit: true,
                ..Default::default()
            };
            let reply = call(path, AgentMessage::new("2", request))?;
            match reply.payload {
                Some(Payload::ExecuteResponse(r)) => Ok(json!({
                    "summary": format!("exit {}", r.exit_code),
                    "reply": { "exit_code": r.exit_code, "stdout": r.stdout },
                    "exit_code": r.exit_code,
                })),
                other => Err((
                    "protocol",
                    format!("expected an execute response, got {other:?}"),
                )),
            }
        }
        (other, _) => Err((
            "usage",
            format!("quantix_host cannot {other}: ping or exec"),
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(mut v) => {
            v["ok"] = json!(true);
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(("usage", message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err((kind, message)) => {
            println!(
                "{}",
                json!({ "ok": false, "error": { "kind": kind, "message": message } })
            );
            ExitCode::from(1)
        }
    }
}
