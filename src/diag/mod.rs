//! Socket inspection and the doctor's rules (`guestwire doctor`).
//!
//! - IO, read-only: [`dump`] (sock_diag netlink for Unix and vsock sockets, `/proc/net/unix`),
//!   [`procfd`] (which process holds which socket), [`inspect::check_path`], [`scan`] (which
//!   sockets), [`probe`] (only with `--probe`: the one part that connects), [`watch::sample_over`].
//! - Pure: [`netlink`] (messages), [`sockets`] (records and the table), [`inspect::view`],
//!   [`watch::trend`], [`rules`], [`probe_rules`] and [`vsock_rules`] (findings), [`report`] (text and JSON).
//! - [`doctor::examine`] puts them together.

pub mod doctor;
pub mod dump;
pub mod finding;
pub mod inspect;
pub mod netlink;
pub mod probe;
pub mod probe_rules;
pub mod procfd;
pub mod report;
pub mod rules;
pub mod scan;
pub mod sockets;
pub mod vsock_rules;
pub mod watch;

pub use doctor::{DoctorOptions, Report, TargetReport, examine};
pub use finding::{Finding, FindingId, Severity};
