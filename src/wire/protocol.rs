//! The protocol names of `--protocol`: the agent protocols guestwire speaks, plus `raw` and the
//! generic `lp:WIDTH:ENDIAN[:MAX][:magic=HEX]`.

use std::fmt;
use std::str::FromStr;

use super::frame::{LpConfig, LpSpecError};

/// An agent protocol (or a framing) that guestwire can decode and speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// LimiQuantix agent, current framing: `QTX\x01` magic, u32 BE length, protobuf.
    Quantix,
    /// LimiQuantix agent as its documents describe it: u32 BE length, protobuf, no magic.
    QuantixLegacy,
    /// Seed 001's Firecracker exec agent: u32 BE length, JSON.
    Fcexec,
    /// Volant's agent: HTTP/1.1 with JSON bodies.
    Volant,
    /// QEMU guest agent: JSON objects, 0xFF delimiters.
    Qga,
    /// Cloud Hypervisor's REST API: HTTP/1.1 over the API socket.
    ChApi,
    /// No framing: bytes as they arrive.
    Raw,
    /// A custom length-prefixed protocol.
    Lp(LpConfig),
}

/// The names `--protocol` accepts (besides `lp:…` and `auto`).
pub const PROTOCOL_NAMES: &[&str] = &[
    "quantix",
    "quantix-legacy",
    "fcexec",
    "volant",
    "qga",
    "ch-api",
    "raw",
];

/// A `--protocol` value that names no protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolParseError {
    /// Not one of the known names.
    #[error(
        "unknown protocol {0:?}; known: quantix, quantix-legacy, fcexec, volant, qga, ch-api, raw, lp:WIDTH:ENDIAN[:MAX]"
    )]
    Unknown(String),
    /// A bad `lp:` specification.
    #[error(transparent)]
    Lp(#[from] LpSpecError),
}

impl FromStr for Protocol {
    type Err = ProtocolParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "quantix" => Self::Quantix,
            "quantix-legacy" => Self::QuantixLegacy,
            "fcexec" => Self::Fcexec,
            "volant" => Self::Volant,
            "qga" => Self::Qga,
            "ch-api" => Self::ChApi,
            "raw" => Self::Raw,
            _ if s.starts_with("lp:") => Self::Lp(s.parse()?),
            _ => return Err(ProtocolParseError::Unknown(s.to_string())),
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quantix => f.write_str("quantix"),
            Self::QuantixLegacy => f.write_str("quantix-legacy"),
            Self::Fcexec => f.write_str("fcexec"),
            Self::Volant => f.write_str("volant"),
            Self::Qga => f.write_str("qga"),
            Self::ChApi => f.write_str("ch-api"),
            Self::Raw => f.write_str("raw"),
            Self::Lp(cfg) => write!(f, "{cfg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in PROTOCOL_NAMES {
            let p: Protocol = name.parse().expect("known name");
            assert_eq!(p.to_string(), *name);
        }
        let p: Protocol = "lp:2:le:1K".parse().expect("lp");
        assert_eq!(p.to_string(), "lp:2:le:1024");
        assert!(matches!(
            "nope".parse::<Protocol>(),
            Err(ProtocolParseError::Unknown(_))
        ));
        assert!(matches!(
            "lp:3:be".parse::<Protocol>(),
            Err(ProtocolParseError::Lp(_))
        ));
    }
}
