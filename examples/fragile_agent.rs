//! A deliberately fragile quantix agent, to see `guestwire fuzz` find something:
//!
//! ```sh
//! cargo run --example fragile_agent -- /tmp/fragile.sock dies &    # or: hangs
//! guestwire fuzz --connect unix:/tmp/fragile.sock --protocol quantix --runs 100
//! ```
//!
//! `dies`: a length field over 16 MiB "kills" it (its socket closes); `hangs`: a zero-length
//! frame makes it stop answering. It is the agent `tests/live_fuzz.rs` runs; it exits by itself
//! after two minutes.

#[path = "../tests/support/fragile.rs"]
mod fragile;

use std::time::Duration;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let weakness = match args.get(2).map(String::as_str) {
        Some("dies") | None => fragile::Weakness::DiesOnOversizeLength,
        Some("hangs") => fragile::Weakness::HangsOnZeroLength,
        Some(other) => {
            eprintln!("fragile_agent: unknown weakness {other:?}: dies or hangs");
            return std::process::ExitCode::from(2);
        }
    };
    let Some(path) = args.get(1) else {
        eprintln!("usage: fragile_agent SOCKET [dies|hangs]");
        return std::process::ExitCode::from(2);
    };
    let agent = fragile::Fragile::start(std::path::Path::new(path), weakness);
    eprintln!("fragile_agent: listening on {path} ({weakness:?})");
    for _ in 0..1200 {
        if agent.broken() {
            eprintln!("fragile_agent: broken ({weakness:?})");
            // Stay a little so that a hung agent is seen hanging.
            std::thread::sleep(Duration::from_secs(30));
            return std::process::ExitCode::from(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::ExitCode::SUCCESS
}
