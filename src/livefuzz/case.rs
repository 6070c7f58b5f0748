//! The generator: a seed and a case index give one [`Case`], deterministically and on its own
//! (case `K` is built without building cases `0..K`, which is what `--case K` relies on).
//!
//! A case is one of: a valid request from the protocol's encoder ([`Family::Valid`]); the
//! malformed variants of the fault generators
//! ([`fault::malform`](mod@crate::fault::malform), plus the hybrid-vsock handshake variants on
//! an `hvsock:` endpoint) ([`Family::Malformed`]); a byte-level mutation of a valid frame
//! ([`Family::Mutated`]); a field-level mutation of its protobuf or JSON
//! ([`Family::Structured`]). Every mutated case passes [`super::safety::is_safe`], or is drawn
//! again (the malformed variants only cut, pad or prefix a safe frame).

use bytes::Bytes;

use super::mutate::{ByteMutation, mutate};
use super::requests::{self, Template};
use super::safety::is_safe;
use super::structured::{mutate_json, mutate_protobuf, pick};
use crate::fault::{MalformedVariant, XorShift64, malform_writes};
use crate::wire::protocol::Protocol;

/// What is being fuzzed: the protocol, and the guest port when the endpoint is hybrid vsock
/// (whose `CONNECT <port>` line the handshake cases malform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The agent protocol.
    pub protocol: Protocol,
    /// The hybrid-vsock guest port, for `hvsock:` endpoints.
    pub hvsock_port: Option<u32>,
}

/// The kind of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A valid request: the peer must answer it.
    Valid,
    /// One of the fault generators' malformed variants of a valid frame.
    Malformed,
    /// A byte-level mutation of a valid frame.
    Mutated,
    /// A field-level (protobuf or JSON) mutation of a valid request, correctly framed.
    Structured,
}

impl Family {
    /// `valid`, `malformed`, `mutated` or `structured`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Malformed => "malformed",
            Self::Mutated => "mutated",
            Self::Structured => "structured",
        }
    }
}

/// One test case: bytes to send on a fresh connection, and what is expected back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Its index in the run (what `--case` takes).
    pub index: u64,
    /// Its kind.
    pub family: Family,
    /// What it is, e.g. `malformed:oversize_length of ping`.
    pub description: String,
    /// The bytes, one entry per write (several when a split matters).
    pub writes: Vec<Bytes>,
    /// Whether the stream is half-closed after the writes.
    pub half_close: bool,
    /// On `hvsock:`, whether the writes carry their own (malformed) `CONNECT` line, so the
    /// adapter must not make the handshake itself.
    pub raw_handshake: bool,
    /// Whether the peer must answer (a valid request).
    pub expect_reply: bool,
}

impl Case {
    /// All the case's bytes, joined.
    pub fn input(&self) -> Bytes {
        Bytes::from(self.writes.concat())
    }
}

/// Why a generator cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("live fuzzing does not know {0}: quantix, quantix-legacy, fcexec, qga or volant")]
pub struct UnsupportedProtocol(pub String);

/// SplitMix64's finaliser: spreads a seed and an index over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many times a case that the safety filter refuses is drawn again before the generator
/// falls back to a valid ping.
const REDRAWS: u32 = 16;

/// Builds the cases of one run.
#[derive(Debug, Clone)]
pub struct Generator {
    target: Target,
    seed: u64,
}

impl Generator {
    /// A generator of cases for `target` from `seed`.
    pub fn new(target: Target, seed: u64) -> Result<Self, UnsupportedProtocol> {
        if !requests::supported(&target.protocol) {
            return Err(UnsupportedProtocol(target.protocol.to_string()));
        }
        Ok(Self { target, seed })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Case number `index`: the same bytes for the same seed, target and index, always.
    pub fn case(&self, index: u64) -> Case {
        let mut rng = XorShift64::new(mix(self.seed ^ mix(index)));
        let id = index + 1;
        let templates = requests::templates(&self.target.protocol, id);
        for _ in 0..REDRAWS {
            // The malformed variants cut, pad or prefix a safe frame and never add a request,
            // so only mutations need the safety filter (which also spares decoding 16 MiB of
            // qga `oversize_length` padding).
            if let Some(case) = self.draw(index, &templates, &mut rng)
                && case.writes.iter().all(|w| !w.is_empty())
                && (case.family == Family::Malformed || is_safe(&self.target, &case.input()))
            {
                return case;
            }
        }
        self.valid(index, &templates[0])
    }

    fn frame(&self, t: &Template) -> Option<Bytes> {
        requests::encode(&self.target.protocol, &t.json).ok()
    }

    fn valid(&self, index: u64, t: &Template) -> Case {
        Case {
            index,
            family: Family::Valid,
            description: format!("valid {}", t.name),
            writes: self.frame(t).into_iter().collect(),
            half_close: false,
            raw_handshake: false,
            expect_reply: true,
        }
    }

    fn draw(&self, index: u64, templates: &[Template], rng: &mut XorShift64) -> Option<Case> {
        let t = &templates[pick(rng, templates.len())];
        let frame = self.frame(t)?;
        let case = |family, description: String, writes: Vec<Bytes>, half_close| Case {
            index,
            family,
            description,
            writes,
            half_close,
            raw_handshake: false,
            expect_reply: false,
        };
        Some(match pick(rng, 100) {
            0..15 => self.valid(index, t),
            15..45 => return self.malformed(index, t, &frame, rng),
            45..75 => {
                let m = ByteMutation::ALL[pick(rng, ByteMutation::ALL.len())];
                let other = &templates[pick(rng, templates.len())];
                let other = self.frame(other)?;
                let out = mutate(m, &self.target.protocol, &frame, &other, rng);
                case(
                    Family::Mutated,
                    format!("{} of {}: {}", m.name(), t.name, out.what),
                    vec![Bytes::from(out.bytes)],
                    out.close,
                )
            }
            _ => {
                let (bytes, what) = self.structured(t, &frame, rng)?;
                case(
                    Family::Structured,
                    format!("field mutation of {}: {what}", t.name),
                    vec![bytes],
                    false,
                )
            }
        })
    }

    fn malformed(
        &self,
        index: u64,
        t: &Template,
        frame: &[u8],
        rng: &mut XorShift64,
    ) -> Option<Case> {
        let all = MalformedVariant::ALL;
        let start = pick(rng, all.len());
        let on_handshake = self.target.hvsock_port.is_some() && rng.next_u64() & 1 == 0;
        for k in 0..all.len() {
            let variant = all[(start + k) % all.len()];
            let handshake_variant = matches!(
                variant,
                MalformedVariant::SplitHandshake | MalformedVariant::NoNewline
            );
            if let (true, true, Some(port)) =
                (handshake_variant, on_handshake, self.target.hvsock_port)
            {
                let line = format!("CONNECT {port}\n");
                let Ok(m) = malform_writes(variant, &self.target.protocol, line.as_bytes()) else {
                    continue;
                };
                let mut writes = m.writes;
                writes.push(Bytes::copy_from_slice(frame));
                return Some(Case {
                    index,
                    family: Family::Malformed,
                    description: format!(
                        "malformed:{} of the CONNECT {port} line, then {}",
                        variant.name(),
                        t.name
                    ),
                    writes,
                    half_close: false,
                    raw_handshake: true,
                    expect_reply: false,
                });
            }
            if let Ok(m) = malform_writes(variant, &self.target.protocol, frame) {
                return Some(Case {
                    index,
                    family: Family::Malformed,
                    description: format!("malformed:{} of {}", variant.name(), t.name),
                    writes: m.writes,
                    half_close: m.close,
                    raw_handshake: false,
                    expect_reply: false,
                });
            }
        }
        None
    }

    fn structured(
        &self,
        t: &Template,
        frame: &[u8],
        rng: &mut XorShift64,
    ) -> Option<(Bytes, String)> {
        let protocol = &self.target.protocol;
        match protocol {
            Protocol::Quantix | Protocol::QuantixLegacy => {
                let header = if *protocol == Protocol::Quantix { 8 } else { 4 };
                let (head, payload) = frame.split_at_checked(header)?;
                let (payload, what) = mutate_protobuf(payload, rng)?;
                let mut out = head[..header - 4].to_vec();
                out.extend_from_slice(&requests::length_prefixed(&payload));
                Some((Bytes::from(out), what))
            }
            Protocol::Fcexec | Protocol::Qga | Protocol::Volant => {
                let mut json = t.json.clone();
                let keep: &[&str] = match protocol {
                    Protocol::Qga => &["execute"],
                    Protocol::Volant => &["method", "path"],
                    _ => &["runtime"],
                };
                let what = mutate_json(&mut json, rng, keep);
                let bytes = requests::encode(protocol, &json).ok()?;
                Some((bytes, what))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "case_tests.rs"]
mod tests;
