//! Round trips per second over a Unix socket, in one run:
//!
//! - `raw_echo_4_bytes`: the floor — 4 bytes written, the same 4 bytes echoed back by a task
//!   on the same runtime;
//! - `quantix_ping`: a quantix ping/pong, `QuantixClient` against the mock agent (robust loop,
//!   no telemetry), in both framings.
//!
//! Both run on one multi-thread Tokio runtime (2 workers) in this process; each iteration is
//! one round trip, driven from the bench thread with `block_on`. The goal is a quantix ping
//! rate of at least 50 % of the raw echo's.

use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use guestwire::guest::GuestConfig;
use guestwire::guest::quantix::serve_connection;
use guestwire::host::DialOptions;
use guestwire::host::quantix::{Framing, QuantixClient};
use guestwire::io::{Endpoint, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

fn main() {
    divan::main();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(sample_count = 50, sample_size = 200)]
fn raw_echo_4_bytes(bencher: Bencher) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("echo.sock");
    let mut client = rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            }
        });
        tokio::net::UnixStream::connect(&path)
            .await
            .expect("connect")
    });
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        rt.block_on(async {
            let mut buf = *b"ping";
            client.write_all(&buf).await.expect("write");
            client.read_exact(&mut buf).await.expect("read");
            buf
        })
    });
}

#[divan::bench(args = ["quantix", "quantix-legacy"], sample_count = 50, sample_size = 200)]
fn quantix_ping(bencher: Bencher, framing: &str) {
    let framing: Framing = framing.parse().expect("framing");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.sock");
    let client = rt.block_on(async {
        let mut listener = Listener::bind_unix(&path).await.expect("bind");
        let cfg = Arc::new(GuestConfig {
            telemetry_interval: None,
            ..GuestConfig::default()
        });
        tokio::spawn(async move {
            while let Ok(conn) = listener.accept().await {
                tokio::spawn(serve_connection(conn.stream, cfg.clone(), framing));
            }
        });
        let client = QuantixClient::connect(&Endpoint::Unix(path), DialOptions::default(), framing)
            .await
            .expect("connect");
        // Warm up (and take AgentReady off the stream).
        client.ping().await.expect("ping");
        client
    });
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), client.ping())
                .await
                .expect("in time")
                .expect("pong")
        })
    });
}
