//! One quantix session over one connection with guestwire's real host client (`QuantixClient`),
//! as `scripts/record-fixtures.sh` records it through `guestwire tap` for
//! `fixtures/captures/quantix-session.pcap`: wait for the agent's `agent_ready` and a telemetry
//! report, then ping, execute `uname -a`, write `motd`, read `hostname`, ask for a reboot, and
//! close. (`guestwire call` makes one request per connection; this is the several-request
//! session the capture needs.)
//!
//! `cargo run --example quantix_session -- ENDPOINT` (e.g. `unix:/tmp/tap.sock`). Exits non-zero
//! when a step fails or takes longer than [`STEP_DEADLINE`].

use std::time::Duration;

use guestwire::host::DialOptions;
use guestwire::host::quantix::{Framing, QuantixClient};
use guestwire::io::Endpoint;
use guestwire::wire::quantix::{ExecuteRequest, Payload, ShutdownType};

/// Every step of the session must finish within this.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

async fn within<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_DEADLINE, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what} took longer than {STEP_DEADLINE:?}")),
    }
}

async fn session(endpoint: &Endpoint) -> Result<(), String> {
    let client = within(
        "connect",
        QuantixClient::connect(endpoint, DialOptions::default(), Framing::Qtx1),
    )
    .await?;
    let events = client.events();
    let mut saw = (false, false);
    while saw != (true, true) {
        let event = tokio::time::timeout(STEP_DEADLINE, events.recv())
            .await
            .ok()
            .flatten()
            .ok_or("the agent sent no agent_ready and telemetry")?;
        match event.payload {
            Some(Payload::AgentReady(_)) => saw.0 = true,
            Some(Payload::Telemetry(_)) => saw.1 = true,
            _ => {}
        }
    }
    within("ping", client.ping()).await?;
    let exec = ExecuteRequest {
        command: "uname".into(),
        args: vec!["-a".into()],
        timeout_seconds: 10,
        wait_for_exit: true,
        max_output_bytes: 1 << 20,
        ..Default::default()
    };
    within("execute", client.execute(exec)).await?;
    within("write", client.write_file("motd", b"hello from the host\n")).await?;
    within("read", client.read_file("hostname")).await?;
    within("shutdown", client.shutdown(ShutdownType::Reboot)).await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let Some(endpoint) = std::env::args().nth(1) else {
        eprintln!("usage: quantix_session ENDPOINT (e.g. unix:/tmp/tap.sock)");
        return std::process::ExitCode::from(2);
    };
    let endpoint: Endpoint = match endpoint.parse() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("quantix_session: {endpoint}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match session(&endpoint).await {
        Ok(()) => {
            println!("quantix_session: ready, telemetry, ping, exec, write, read, shutdown: ok");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quantix_session: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
