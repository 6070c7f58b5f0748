//! Scenarios: guestwire's regression suite. A scenario file (TOML, [`model`]) says what runs on
//! each side of a channel — the built-in mock guest, host client and VMMs, or a user's command —
//! which faults the channel has, the steps (host calls, raw bytes, VMM and API actions, waits,
//! fault changes) and what each must produce. `guestwire test` runs them.
//!
//! - [`model`] the file format, [`load`] reading and checking it (errors with file:line),
//!   [`builtin`] the suite compiled into the binary (`scenarios/*.toml`);
//! - [`world`] the channel and guest of one scenario, [`execute`] one scenario's run (paused
//!   clock for in-process peers, real time with processes, a capture of every host connection,
//!   the verdict), with the step kinds in [`call`], [`raw`], [`api`] and [`frames`], and the
//!   pure checks in [`expect`];
//! - [`suite`] selection (filters, partitions, conformance runs) and parallel runs, [`report`]
//!   text, JUnit XML and JSON.
//!
//! `docs/scenarios.md` is the user's guide.

pub mod api;
pub mod builtin;
pub mod call;
pub mod execute;
pub mod expect;
pub mod frames;
pub mod host_tap;
pub mod load;
pub mod model;
pub mod raw;
pub mod report;
pub mod suite;
pub mod world;

pub use execute::{RunOptions, ScenarioResult, Verdict, run_scenario};
pub use load::{LoadError, LoadedScenario, load_path, parse};
pub use suite::{Selection, run_all, select};
