//! Records `fixtures/captures/quantix-session.pcap` from live traffic: guestwire's real host
//! client (`QuantixClient`) talks to the real mock guest agent through an in-process recording
//! proxy that writes every chunk it relays with `CaptureWriter`, the writer the tap uses. Nothing
//! in the capture is typed by hand.
//!
//! The session: the agent's `agent_ready`, a telemetry report, ping, execute (the mock's
//! deterministic echo mode), file write, file read, shutdown, then the host closes. The channel is
//! recorded as a virtio-serial port (host CID 2 ↔ guest CID 3, port 1; `docs/captures.md`).
//!
//! Run from the repository root: `cargo run --example record_capture [OUT.pcap|OUT.pcapng]`.
//! The timestamps are the wall clock of the run, so each run writes different bytes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use guestwire::capture::vsockmon::{DEFAULT_GUEST_CID, DEFAULT_SERIAL_PORT};
use guestwire::capture::{CaptureWriter, Close, Flow, Side};
use guestwire::guest::GuestConfig;
use guestwire::guest::exec::ExecMode;
use guestwire::host::DialOptions;
use guestwire::host::quantix::{Framing, QuantixClient};
use guestwire::wire::Direction;
use guestwire::wire::protocol::Protocol;
use guestwire::wire::quantix::{ExecuteRequest, Payload, ShutdownType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Every step of the session must finish within this.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// Relays `from` → `to`, recording each chunk as it passes; records `from`'s side disconnecting
/// at EOF (a reset on a read error) and shuts down `to`'s write side.
async fn relay(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    capture: CaptureWriter,
    flow: Flow,
    direction: Direction,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let sender = Side::sender(direction);
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                capture
                    .disconnect(SystemTime::now(), &flow, sender, Close::Shutdown)
                    .map_err(std::io::Error::other)?;
                return to.shutdown().await;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = capture.disconnect(SystemTime::now(), &flow, sender, Close::Reset);
                return Err(e);
            }
        };
        capture
            .payload(SystemTime::now(), &flow, direction, &buf[..n])
            .map_err(std::io::Error::other)?;
        to.write_all(&buf[..n]).await?;
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP_DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {STEP_DEADLINE:?}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from("fixtures/captures/quantix-session.pcap"),
        PathBuf::from,
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("create the output directory");
    }
    let capture = CaptureWriter::create(&out).expect("create the capture");
    let flow = Flow::serial(DEFAULT_SERIAL_PORT, DEFAULT_GUEST_CID);

    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("hostname"), b"vm-42\n").expect("seed a file");
    let cfg = Arc::new(GuestConfig {
        root: Some(root.path().to_path_buf()),
        exec: ExecMode::Echo,
        telemetry_interval: Some(Duration::from_millis(200)),
        hostname: "vm-42".into(),
        ..GuestConfig::default()
    });

    let (guest_end, proxy_guest) = UnixStream::pair().expect("socket pair");
    let (host_end, proxy_host) = UnixStream::pair().expect("socket pair");
    let guest = tokio::spawn(async move {
        guestwire::guest::serve_connection(&Protocol::Quantix, Box::new(guest_end), cfg).await
    });
    capture
        .connect(SystemTime::now(), &flow, Side::Host)
        .expect("record the connect");
    let (host_read, host_write) = proxy_host.into_split();
    let (guest_read, guest_write) = proxy_guest.into_split();
    let to_guest = tokio::spawn(relay(
        host_read,
        guest_write,
        capture.clone(),
        flow,
        Direction::ToGuest,
    ));
    let to_host = tokio::spawn(relay(
        guest_read,
        host_write,
        capture.clone(),
        flow,
        Direction::ToHost,
    ));

    let client =
        QuantixClient::from_stream(Box::new(host_end), DialOptions::default(), Framing::Qtx1);
    let events = client.events();
    let mut saw = (false, false);
    while saw != (true, true) {
        let event = within("the agent's events", events.recv())
            .await
            .expect("the agent sends agent_ready and telemetry");
        match event.payload {
            Some(Payload::AgentReady(_)) => saw.0 = true,
            Some(Payload::Telemetry(_)) => saw.1 = true,
            _ => {}
        }
    }
    within("ping", client.ping()).await.expect("ping");
    let exec = ExecuteRequest {
        command: "uname".into(),
        args: vec!["-a".into()],
        timeout_seconds: 10,
        wait_for_exit: true,
        max_output_bytes: 1 << 20,
        ..Default::default()
    };
    within("execute", client.execute(exec))
        .await
        .expect("execute");
    within("write", client.write_file("motd", b"hello from the host\n"))
        .await
        .expect("file write");
    within("read", client.read_file("hostname"))
        .await
        .expect("file read");
    within("shutdown", client.shutdown(ShutdownType::Reboot))
        .await
        .expect("shutdown");
    drop(client);

    within("the host side's close", to_guest)
        .await
        .expect("relay task")
        .expect("relay to the guest");
    let _ = within("the agent's end", guest).await;
    within("the guest side's close", to_host)
        .await
        .expect("relay task")
        .expect("relay to the host");
    let stats = capture.stats();
    println!(
        "{}: {} records, {} bytes to the guest, {} bytes to the host",
        out.display(),
        stats.records,
        stats.to_guest_bytes,
        stats.to_host_bytes
    );
}
