//! The scenario file format, as serde reads it from TOML: one file holds one or more
//! `[[scenario]]` tables. Every table rejects unknown keys, and every value is checked where it is
//! read, so a typo is an error with its file and line (see [`super::load`]).
//!
//! `docs/scenarios.md` shows every key with an example.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::fault::FaultSpec;
use crate::fault::duration::{EXPECTED_DURATION, parse_duration};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;

/// A scenario file: a list of scenarios.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The file's scenarios, in order.
    #[serde(rename = "scenario", default)]
    pub scenarios: Vec<toml::Spanned<Scenario>>,
}

/// One scenario: what runs on each side, the channel between them, and the steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A unique name saying what the scenario proves, in snake_case.
    pub name: String,
    /// One or two sentences: what is proved and where the behaviour comes from.
    pub proves: String,
    /// Free-form tags, matched by `--filter tag:NAME`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The protocol spoken on the channel.
    #[serde(deserialize_with = "de_protocol")]
    pub protocol: Protocol,
    /// Which side may be replaced by the user's implementation (`--guest-cmd` / `--host-cmd`).
    #[serde(default)]
    pub conformance: Option<ConformanceSide>,
    /// The whole scenario's deadline, in the scenario's clock (default 120 s).
    #[serde(default)]
    pub deadline: Option<Dur>,
    /// The channel and its faults.
    pub channel: Channel,
    /// The guest side.
    #[serde(default)]
    pub guest: Guest,
    /// The host side.
    #[serde(default)]
    pub host: Host,
    /// The steps, run in order.
    #[serde(rename = "step", default)]
    pub steps: Vec<toml::Spanned<Step>>,
}

/// Which side of a scenario a user's implementation may stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConformanceSide {
    /// `--guest-cmd` replaces the mock guest.
    Guest,
    /// `--host-cmd` replaces the built-in host client.
    Host,
}

impl ConformanceSide {
    /// The name as scenario files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Guest => "guest",
            Self::Host => "host",
        }
    }
}

/// How the host reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// A QEMU virtio-serial port behind a Unix socket (the mock serial VMM).
    Serial,
    /// A hybrid-vsock Unix socket with `CONNECT <port>` (the mock hvsock VMM).
    Hvsock,
    /// A Cloud Hypervisor API socket whose VMs get a hybrid-vsock socket at boot.
    ChApi,
}

impl ChannelKind {
    /// The name as scenario files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Serial => "serial",
            Self::Hvsock => "hvsock",
            Self::ChApi => "ch-api",
        }
    }
}

/// The channel between host and guest, and its faults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// serial, hvsock or ch-api.
    pub kind: ChannelKind,
    /// serial: the port's name (default: the protocol's usual name).
    #[serde(default)]
    pub port_name: Option<String>,
    /// hvsock / ch-api: whose muxer (default firecracker; ch-api: cloud-hypervisor).
    #[serde(default, deserialize_with = "de_opt_flavour")]
    pub flavour: Option<Flavour>,
    /// hvsock / ch-api: the guest port the agent listens on (default: the protocol's port).
    #[serde(default)]
    pub port: Option<u32>,
    /// hvsock: whether the agent listens from the start (default true); `false` with a
    /// `guest = "start"` VMM step later shows a client retrying until the guest listens.
    #[serde(default)]
    pub listening: Option<bool>,
    /// ch-api: the Cloud Hypervisor version to behave as (default v49.0).
    #[serde(default)]
    pub version: Option<String>,
    /// ch-api: `real` (the status codes the real server sends, default) or `spec`.
    #[serde(default)]
    pub codes: Option<String>,
    /// Faults from the start (the vocabulary of `guestwire vmm --fault`), as strings
    /// (`"latency:latency=50ms"`) or tables (`{ kind = "latency", latency = "50ms" }`).
    #[serde(default)]
    pub faults: Vec<FaultEntry>,
    /// Seed of the fault plans' random choices (default 1).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The guest side.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guest {
    /// A user's agent instead of the mock: a shell command line with `{device}` (serial),
    /// `{socket}` and `{port}` (hvsock) placeholders. `--guest-cmd` sets it for conformance
    /// scenarios.
    #[serde(default)]
    pub command: Option<String>,
    /// The protocol the mock guest speaks when it differs from the scenario's (a framing
    /// mismatch: a QTX1 host against a legacy agent).
    #[serde(default, deserialize_with = "de_opt_protocol")]
    pub protocol: Option<Protocol>,
    /// `false`: nothing on the guest side (an agent that is not running). Default true.
    #[serde(default)]
    pub running: Option<bool>,
    /// The mock's main loop: `robust` (default) or `naive` (seed 003's single loop).
    #[serde(default, rename = "loop")]
    pub loop_mode: Option<String>,
    /// The mock's telemetry interval (quantix), e.g. `"5s"`; none by default.
    #[serde(default)]
    pub telemetry: Option<Dur>,
    /// Delay before every reply of the mock.
    #[serde(default)]
    pub reply_delay: Option<Dur>,
    /// `echo` (default: commands are not run, stdout is the argv) or `real`.
    #[serde(default)]
    pub exec: Option<String>,
}

/// The host side.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// A user's host client instead of the built-in one, run once per `call` step: a shell
    /// command line with `{endpoint}`, `{socket}`, `{port}`, `{protocol}`, `{op}` and `{args}`
    /// placeholders. `--host-cmd` sets it for conformance scenarios.
    #[serde(default)]
    pub command: Option<String>,
    /// Dial attempts (default 5, seed 001's schedule).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// First retry delay (default 100 ms, doubling).
    #[serde(default)]
    pub backoff: Option<Dur>,
    /// Per-request deadline (default 30 s, LimiQuantix's).
    #[serde(default)]
    pub request_deadline: Option<Dur>,
    /// Connect deadline (default 5 s).
    #[serde(default)]
    pub connect_deadline: Option<Dur>,
}

/// One step. Exactly one action key (`call`, `wait`, `vmm`, `faults`, `connect`, `send`, `recv`,
/// `close`, `api`, `frames`, `join`) says what it does; the other keys are its arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    // ---- actions ----
    /// A host call: ping, exec, read, write, shutdown, info or raw.
    #[serde(default)]
    pub call: Option<String>,
    /// Let time pass (the scenario's clock).
    #[serde(default)]
    pub wait: Option<Dur>,
    /// A VMM action: pause, resume, restart_guest, start_guest, stop_guest.
    #[serde(default)]
    pub vmm: Option<String>,
    /// Replace the channel's stream faults from now on (`[]`: faults off); new connections get
    /// the new plan.
    #[serde(default)]
    pub faults: Option<Vec<FaultEntry>>,
    /// Open a raw host connection with this name (no protocol client: bytes as given).
    #[serde(default)]
    pub connect: Option<String>,
    /// Send bytes on a named raw connection (`text`, `hex` or `json` — a frame of the
    /// scenario's protocol encoded from its JSON form).
    #[serde(default)]
    pub send: Option<String>,
    /// Read from a named raw connection until the expectation holds or `within` passes.
    #[serde(default)]
    pub recv: Option<String>,
    /// Close a named raw connection.
    #[serde(default)]
    pub close: Option<String>,
    /// A request to the Cloud Hypervisor API: `"PUT vm.create"` (path under `/api/v1/`).
    #[serde(default)]
    pub api: Option<String>,
    /// Check the frames recorded so far.
    #[serde(default)]
    pub frames: Option<FramesCheck>,
    /// Wait for a background call (`background = true`, `name = …`) and check it.
    #[serde(default)]
    pub join: Option<String>,

    // ---- arguments ----
    /// connect: `host` (default: a host client on the channel's socket) or `guest` (the
    /// guest's end of a serial port whose agent is not running: the scenario is the guest, and
    /// its `send`/`recv` steps are the agent's writes and reads).
    #[serde(default)]
    pub side: Option<String>,
    /// A name for a background call.
    #[serde(default)]
    pub name: Option<String>,
    /// Run the call in the background; `join` it later.
    #[serde(default)]
    pub background: Option<bool>,
    /// exec: the program.
    #[serde(default)]
    pub program: Option<String>,
    /// exec: its arguments.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// read/write: the guest path.
    #[serde(default)]
    pub path: Option<String>,
    /// write: the contents; send: text bytes; api: the body.
    #[serde(default)]
    pub text: Option<String>,
    /// send: bytes as hex.
    #[serde(default)]
    pub hex: Option<String>,
    /// raw call / send: a message in the protocol's JSON form.
    #[serde(default)]
    pub json: Option<String>,
    /// shutdown: poweroff, reboot or halt.
    #[serde(default)]
    pub mode: Option<String>,
    /// exec: the command's own timeout.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// call: dial `vsock:CID:PORT` (AF_VSOCK) instead of the channel's socket. The scenario's
    /// modelled host has no vhost-vsock device unless the channel provides one.
    #[serde(default)]
    pub via: Option<String>,
    /// The step's deadline (default: the call's own deadlines, else 30 s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// What must hold.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// What a step's outcome must be. Keys that do not apply to a step are errors at load time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The call (or connect, api request) succeeded (`true`) or failed (`false`).
    #[serde(default)]
    pub ok: Option<bool>,
    /// The error's kind (`timed_out`, `busy`, `refused`, `closed`, `reset`, `malformed`,
    /// `agent_error`, `no_vsock_device`, …); implies `ok = false`.
    #[serde(default)]
    pub error: Option<String>,
    /// Text the error's message contains.
    #[serde(default)]
    pub error_contains: Option<String>,
    /// Text the call's one-line summary contains.
    #[serde(default)]
    pub summary_contains: Option<String>,
    /// Fields of the reply: dotted paths (`pong.sequence`, `return.version`) to values.
    #[serde(default)]
    pub reply: BTreeMap<String, toml::Value>,
    /// Fields of the reply that must exist, whatever their value.
    #[serde(default)]
    pub reply_has: Vec<String>,
    /// The exec's exit code.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The data returned (file contents, stdout), as text.
    #[serde(default)]
    pub data: Option<String>,
    /// Unsolicited messages (events, log lines) that arrived with the reply: at least this many.
    #[serde(default)]
    pub events_min: Option<usize>,
    /// … and at most this many.
    #[serde(default)]
    pub events_max: Option<usize>,
    /// The step completed no earlier than this (a timeout that must be the protocol's).
    #[serde(default)]
    pub not_before: Option<Dur>,
    /// recv: the bytes read, as text, contain this.
    #[serde(default)]
    pub contains: Option<String>,
    /// recv: the bytes read, as text, do not contain this (checked when the step ends).
    #[serde(default)]
    pub excludes: Option<String>,
    /// recv: the connection ends (EOF or reset) within the step.
    #[serde(default)]
    pub eof: Option<bool>,
    /// recv: nothing at all arrives within the step.
    #[serde(default)]
    pub silent: Option<bool>,
    /// recv: at least these frame types arrive (decoded with the scenario's protocol).
    #[serde(default)]
    pub frame_types: Vec<String>,
    /// api: the HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// api: text the response body contains.
    #[serde(default)]
    pub body_contains: Option<String>,
}

/// A check of the frames recorded so far on the host's connections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesCheck {
    /// Frames that must have been seen: `"to_host:pong"`, `"to_guest:ping"` or a bare type.
    #[serde(default)]
    pub seen: Vec<String>,
    /// Frames that must not have been seen.
    #[serde(default)]
    pub not_seen: Vec<String>,
    /// These frames, in this order (others may come between).
    #[serde(default)]
    pub order: Vec<String>,
    /// Decode errors allowed (default: not checked).
    #[serde(default)]
    pub errors_max: Option<usize>,
    /// Decode errors required at least.
    #[serde(default)]
    pub errors_min: Option<usize>,
}

/// A duration as scenario files write it (`"200ms"`, `"1.5s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not {EXPECTED_DURATION}")))
    }
}

/// A fault, written as the CLI's string or as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultEntry(pub FaultSpec);

impl<'de> Deserialize<'de> for FaultEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FaultEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fault as \"kind[:key=value,...]\" or a table with a kind key")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FaultEntry, E> {
                s.parse::<FaultSpec>()
                    .map(FaultEntry)
                    .map_err(|e| E::custom(format!("fault {s:?}: {e}")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FaultEntry, A::Error> {
                FaultSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(FaultEntry)
            }
        }
        d.deserialize_any(V)
    }
}

fn de_protocol<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
    use serde::de::Error as _;
    let s = String::deserialize(d)?;
    s.parse().map_err(D::Error::custom)
}

fn de_opt_protocol<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Protocol>, D::Error> {
    de_protocol(d).map(Some)
}

fn de_opt_flavour<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Flavour>, D::Error> {
    use serde::de::Error as _;
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(D::Error::custom)
}
