//! A small standalone quantix guest agent, as a user's agent would be: it opens the
//! virtio-serial device given as its argument (under `guestwire vmm serial --guest-cmd`, the pty
//! standing in for `/dev/virtio-ports/NAME`), writes `AgentReady`, then answers requests with
//! guestwire's wire codec (QTX1 framing), one at a time, with plain blocking reads and writes:
//!
//! - `ping` → `pong` (same sequence, version `quantix_agent-example`);
//! - `get_capabilities` → the list below;
//! - `execute` → runs nothing: exit code 0, stdout = the command and its arguments joined by
//!   spaces (deterministic, for tests);
//! - any other request → an `ErrorEvent` with code `UNIMPLEMENTED` and `request_id`, which the
//!   host client turns into an agent error for that request.
//!
//! Frames that do not decode are skipped (QTX1 resynchronises on the next magic). It exits 0 when
//! the device hangs up (end of file, or `EIO` on a terminal whose other end closed), 1 on other
//! errors, 2 on a usage error.
//!
//! `guestwire vmm serial --socket /tmp/vm.sock --guest-cmd 'target/debug/examples/quantix_agent {device}'`

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::process::ExitCode;

use bytes::BytesMut;

use guestwire::wire::Decoder;
use guestwire::wire::quantix::{
    AgentMessage, AgentReadyEvent, ErrorEvent, ErrorSeverity, ExecuteResponse,
    GetCapabilitiesResponse, Payload, PongResponse, QuantixDecoder, QuantixEncoder,
};

/// The version this agent reports.
const VERSION: &str = "quantix_agent-example";

/// The requests this agent answers.
const CAPABILITIES: &[&str] = &["ping", "get_capabilities", "execute"];

/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

fn send(device: &mut File, message: &AgentMessage) -> io::Result<()> {
    let frame = QuantixEncoder::new()
        .to_bytes(message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    device.write_all(&frame)?;
    device.flush()
}

fn answer(request: AgentMessage) -> Option<AgentMessage> {
    let id = request.message_id.clone();
    let payload: Payload = match request.payload? {
        Payload::Ping(p) => PongResponse {
            sequence: p.sequence,
            version: VERSION.into(),
            uptime_seconds: 0,
        }
        .into(),
        Payload::GetCapabilities(_) => GetCapabilitiesResponse {
            version: VERSION.into(),
            os: std::env::consts::OS.into(),
            architecture: std::env::consts::ARCH.into(),
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }
        .into(),
        Payload::Execute(e) => {
            let mut words = vec![e.command];
            words.extend(e.args);
            ExecuteResponse {
                exit_code: 0,
                stdout: words.join(" "),
                ..Default::default()
            }
            .into()
        }
        other if other.kind() == guestwire::wire::quantix::MessageKind::Request => {
            let event = ErrorEvent {
                severity: ErrorSeverity::Error as i32,
                code: "UNIMPLEMENTED".into(),
                message: format!("quantix_agent does not implement {}", other.name()),
                details: BTreeMap::from([
                    ("request_id".to_string(), id.clone()),
                    ("request".to_string(), other.name().to_string()),
                ]),
            };
            return Some(AgentMessage::new("", event));
        }
        // Responses and events from the host: nothing to answer.
        _ => return None,
    };
    Some(AgentMessage::new(id, payload))
}

fn is_hangup(e: &io::Error) -> bool {
    // A terminal whose other end closed reads as EIO.
    e.raw_os_error() == Some(5)
}

fn serve(device: &mut File) -> io::Result<()> {
    let ready = AgentReadyEvent {
        version: VERSION.into(),
        os_name: std::env::consts::OS.into(),
        architecture: std::env::consts::ARCH.into(),
        hostname: "quantix-agent-example".into(),
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    send(device, &AgentMessage::new("", ready))?;
    let mut decoder = QuantixDecoder::new();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match device.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_hangup(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(item) = decoder.decode(&mut buf) {
            match item {
                Ok(frame) => {
                    if let Some(reply) = answer(frame.message) {
                        send(device, &reply)?;
                    }
                }
                Err(e) => eprintln!("quantix_agent: skipping a bad frame: {e}"),
            }
        }
    }
}

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: quantix_agent DEVICE");
        return ExitCode::from(2);
    };
    let mut device = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("quantix_agent: cannot open {}: {e}", path.to_string_lossy());
            return ExitCode::from(1);
        }
    };
    match serve(&mut device) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_hangup(&e) || e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quantix_agent: {e}");
            ExitCode::from(1)
        }
    }
}
