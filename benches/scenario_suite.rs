//! The scenario runner's cost, in one run:
//!
//! - `suite`: the whole built-in suite as `guestwire test` runs it (parallel workers, paused
//!   clock, a capture per scenario) — the figure to keep under 15 s on these 2 cores;
//! - `one_ping_scenario`: one scenario (a mock serial port, the mock quantix agent, one ping, a
//!   frames check), through the runner, on one thread;
//! - `hand_written_ping`: the same ping written as a plain test would (start the mock port, call
//!   the host client, stop), on a paused current-thread runtime — the peer the runner replaces.
//!   `one_ping_scenario` minus this is the runner's per-scenario overhead (its directory,
//!   runtime, thread, capture and frame decoding).

use std::sync::Arc;

use divan::Bencher;
use guestwire::guest::GuestConfig;
use guestwire::guest::exec::ExecMode;
use guestwire::host::{CallOp, DialOptions, call_once};
use guestwire::io::Endpoint;
use guestwire::scenario::execute::{RunOptions, run_scenario};
use guestwire::scenario::world::Overrides;
use guestwire::scenario::{builtin, parse, run_all, select};
use guestwire::vmm::serial::{GuestSide, SerialVmm, SerialVmmConfig};
use guestwire::wire::protocol::Protocol;

fn main() {
    divan::main();
}

const ONE: &str = r#"
[[scenario]]
name = "one_ping"
proves = "the runner's overhead"
protocol = "quantix"
channel = { kind = "serial" }

[[scenario.step]]
call = "ping"
expect = { reply = { sequence = 1 } }

[[scenario.step]]
frames = { seen = ["to_host:pong"] }
"#;

fn options(out: &std::path::Path) -> RunOptions {
    RunOptions {
        overrides: Overrides::default(),
        out_dir: out.to_path_buf(),
        keep_captures: false,
    }
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn suite(bencher: Bencher) {
    let all = builtin::load().expect("the built-in suite");
    let chosen = select(&all, &Default::default());
    let out = tempfile::tempdir().expect("tempdir");
    let opts = options(out.path());
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    bencher.bench_local(|| {
        let results = run_all(&chosen, &opts, jobs, &|_| {});
        assert!(
            results.iter().all(|r| r.failure.is_none()),
            "the suite passes"
        );
    });
}

#[divan::bench(sample_count = 50)]
fn one_ping_scenario(bencher: Bencher) {
    let one = parse("one.toml", ONE).expect("parse");
    let out = tempfile::tempdir().expect("tempdir");
    let opts = options(out.path());
    bencher.bench_local(|| {
        let r = run_scenario(&one[0], &opts);
        assert!(r.failure.is_none(), "{:?}", r.failure);
    });
}

#[divan::bench(sample_count = 50)]
fn hand_written_ping(bencher: Bencher) {
    bencher.bench_local(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let socket = dir.path().join("vm.sock");
            let config = GuestConfig {
                exec: ExecMode::Echo,
                ..GuestConfig::default()
            };
            let vmm = SerialVmm::start(SerialVmmConfig::new(
                &socket,
                "org.quantix.agent.0",
                GuestSide::Mock {
                    protocol: Protocol::Quantix,
                    config: Arc::new(config),
                },
            ))
            .await
            .expect("port");
            let out = call_once(
                &Protocol::Quantix,
                &Endpoint::Unix(socket),
                &DialOptions::default(),
                &CallOp::Ping,
            )
            .await
            .expect("pong");
            assert_eq!(out.reply["sequence"], 1);
            vmm.stop().await;
        });
    });
}
