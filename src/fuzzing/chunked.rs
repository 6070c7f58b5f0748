//! The structure-aware target (the operation-enum shape of quinn's fuzz targets): an `Arbitrary`
//! list of [`StreamOp`]s is turned into a byte stream with guestwire's real encoders (quantix
//! QTX1, quantix-legacy or fcexec), cut into reads at the [`StreamOp::Cut`]s, and decoded both
//! read by read and in one piece. Both must agree; and when every operation was a valid message,
//! the decoded frames must be exactly the encoded messages, in order, at their offsets.

use bytes::{Bytes, BytesMut};

use super::{FUZZ_MAX_FRAME, decode_bounded, describe_all};
use crate::wire::codec::{Decoder, Encoder, Frame};
use crate::wire::fcexec::{
    FcexecDecoder, FcexecEncoder, FcexecMessage, GuestRequest, GuestResponse,
};
use crate::wire::frame::{LpConfig, LpEncoder};
use crate::wire::quantix::{
    AgentMessage, ErrorEvent, ExecuteRequest, ExecuteResponse, FileWriteRequest, LegacyDecoder,
    LegacyEncoder, PingRequest, PongResponse, QuantixDecoder, QuantixEncoder, Timestamp,
    legacy_config, qtx1_config,
};

/// Which protocol the stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ChunkedProtocol {
    /// QTX1 magic, u32 BE length, protobuf `AgentMessage`s.
    Quantix,
    /// u32 BE length, protobuf `AgentMessage`s.
    Legacy,
    /// u32 BE length, fcexec JSON.
    Fcexec,
}

/// One step in building the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StreamOp {
    /// Bytes spliced in as they are: garbage, half a frame, another framing.
    Bytes(Vec<u8>),
    /// A correctly framed header around an arbitrary payload.
    Framed(Vec<u8>),
    /// quantix `ping` (fcexec: a request with this runtime and timeout).
    Ping {
        /// The message id.
        id: String,
        /// The ping's sequence number.
        sequence: u64,
        /// A timestamp (seconds, nanos), in range or not.
        at: Option<(i64, i32)>,
    },
    /// quantix `pong` (fcexec: a log line naming the version).
    Pong {
        /// The message id.
        id: String,
        /// The sequence number answered.
        sequence: u64,
        /// The agent version.
        version: String,
    },
    /// quantix `execute` (fcexec: a request whose code is the command, args in its env).
    Execute {
        /// The message id.
        id: String,
        /// The command.
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// quantix `file_write` (fcexec: a request carrying the data as its code archive).
    FileData {
        /// The message id.
        id: String,
        /// The file's bytes.
        data: Vec<u8>,
    },
    /// quantix `error` event (fcexec: a log line).
    Log(String),
    /// quantix `execute_response` (fcexec: the result).
    Result {
        /// The exit code.
        exit_code: i32,
        /// What the command printed.
        output: String,
    },
    /// A read boundary.
    Cut,
}

/// The input of the `chunked_stream` target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ChunkedInput {
    /// The protocol of the whole stream.
    pub protocol: ChunkedProtocol,
    /// What the stream is made of, in order.
    pub ops: Vec<StreamOp>,
}

/// A stream under construction: its bytes, the read boundaries, the frames it must decode to,
/// and whether every byte belongs to one of those frames.
struct Built<M> {
    bytes: BytesMut,
    cuts: Vec<usize>,
    expected: Vec<Frame<M>>,
    only_valid: bool,
}

impl<M> Built<M> {
    fn new() -> Self {
        Self {
            bytes: BytesMut::new(),
            cuts: Vec::new(),
            expected: Vec::new(),
            only_valid: true,
        }
    }

    /// Applies the ops that are not messages; returns the op back when it is one.
    fn plain<'a>(&mut self, op: &'a StreamOp, lp: &LpConfig) -> Option<&'a StreamOp> {
        match op {
            StreamOp::Bytes(b) => {
                self.bytes.extend_from_slice(b);
                self.only_valid = false;
            }
            StreamOp::Framed(payload) => {
                let before = self.bytes.len();
                if LpEncoder::new(lp.clone())
                    .encode(&payload[..], &mut self.bytes)
                    .is_ok()
                {
                    self.only_valid = false;
                } else {
                    self.bytes.truncate(before);
                }
            }
            StreamOp::Cut => self.cuts.push(self.bytes.len()),
            message => return Some(message),
        }
        None
    }

    /// Appends `message` with `encode`, expecting it back; skips one the encoder refuses.
    fn message(
        &mut self,
        message: M,
        encode: impl FnOnce(&M, &mut BytesMut) -> Result<(), crate::wire::EncodeError>,
    ) {
        let start = self.bytes.len();
        if encode(&message, &mut self.bytes).is_err() {
            self.bytes.truncate(start);
            return;
        }
        self.expected.push(Frame {
            offset: start as u64,
            wire_len: (self.bytes.len() - start) as u64,
            message,
        });
    }

    /// Decodes the stream read by read and in one piece, and checks them against each other
    /// and, when the stream holds only valid messages, against what was encoded.
    fn check<D>(self, make: impl Fn() -> D)
    where
        D: Decoder<Message = M>,
        M: PartialEq + std::fmt::Debug + crate::wire::Describe,
    {
        let mut reads = Vec::with_capacity(self.cuts.len() + 1);
        let mut from = 0;
        for &cut in &self.cuts {
            reads.push(&self.bytes[from..cut]);
            from = cut;
        }
        reads.push(&self.bytes[from..]);
        let whole = decode_bounded(&mut make(), &[&self.bytes[..]], FUZZ_MAX_FRAME);
        let chunked = decode_bounded(&mut make(), &reads, FUZZ_MAX_FRAME);
        assert_eq!(
            whole, chunked,
            "cutting the stream into reads changed the result"
        );
        describe_all(&whole);
        if self.only_valid {
            let expected: Vec<_> = self.expected.into_iter().map(Ok).collect();
            assert_eq!(
                whole, expected,
                "a stream of valid frames did not decode to the encoded messages"
            );
        }
    }
}

/// The quantix message an op stands for.
fn quantix_message(op: &StreamOp) -> Option<AgentMessage> {
    Some(match op {
        StreamOp::Ping { id, sequence, at } => {
            let msg = AgentMessage::new(
                id.clone(),
                PingRequest {
                    sequence: *sequence,
                },
            );
            match at {
                Some((s, n)) => msg.with_timestamp(Timestamp::new(*s, *n)),
                None => msg,
            }
        }
        StreamOp::Pong {
            id,
            sequence,
            version,
        } => AgentMessage::new(
            id.clone(),
            PongResponse {
                sequence: *sequence,
                version: version.clone(),
                uptime_seconds: 0,
            },
        ),
        StreamOp::Execute { id, command, args } => AgentMessage::new(
            id.clone(),
            ExecuteRequest {
                command: command.clone(),
                args: args.clone(),
                wait_for_exit: true,
                ..ExecuteRequest::default()
            },
        ),
        StreamOp::FileData { id, data } => AgentMessage::new(
            id.clone(),
            FileWriteRequest {
                path: "/tmp/guestwire-fuzz".into(),
                data: Bytes::from(data.clone()),
                eof: true,
                ..FileWriteRequest::default()
            },
        ),
        StreamOp::Log(line) => AgentMessage::new(
            String::new(),
            ErrorEvent {
                message: line.clone(),
                ..ErrorEvent::default()
            },
        ),
        StreamOp::Result { exit_code, output } => AgentMessage::new(
            String::new(),
            ExecuteResponse {
                exit_code: *exit_code,
                stdout: output.clone(),
                ..ExecuteResponse::default()
            },
        ),
        StreamOp::Bytes(_) | StreamOp::Framed(_) | StreamOp::Cut => return None,
    })
}

/// The fcexec message an op stands for.
fn fcexec_message(op: &StreamOp) -> Option<FcexecMessage> {
    Some(match op {
        StreamOp::Ping { id, sequence, .. } => FcexecMessage::Request(GuestRequest {
            runtime: id.clone(),
            timeout_s: *sequence,
            ..GuestRequest::default()
        }),
        StreamOp::Pong { version, .. } => FcexecMessage::Log {
            line: format!("agent {version}"),
        },
        StreamOp::Execute { id, command, args } => FcexecMessage::Request(GuestRequest {
            runtime: id.clone(),
            code: command.clone(),
            env: args
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("ARG{i}"), a.clone()))
                .collect(),
            ..GuestRequest::default()
        }),
        StreamOp::FileData { id, data } => FcexecMessage::Request(GuestRequest {
            runtime: id.clone(),
            code_archive: data.clone(),
            ..GuestRequest::default()
        }),
        StreamOp::Log(line) => FcexecMessage::Log { line: line.clone() },
        StreamOp::Result { exit_code, output } => FcexecMessage::Result(GuestResponse {
            exit_code: *exit_code,
            output: output.clone(),
            ..GuestResponse::default()
        }),
        StreamOp::Bytes(_) | StreamOp::Framed(_) | StreamOp::Cut => return None,
    })
}

/// Fuzz entry: builds the stream `input` describes with the real encoders and checks that it
/// decodes the same read by read as in one piece, and (when it holds only valid messages) to
/// exactly the encoded messages.
pub fn chunked(input: ChunkedInput) {
    match input.protocol {
        ChunkedProtocol::Quantix | ChunkedProtocol::Legacy => {
            let legacy = input.protocol == ChunkedProtocol::Legacy;
            let lp = if legacy {
                legacy_config(FUZZ_MAX_FRAME)
            } else {
                qtx1_config(FUZZ_MAX_FRAME)
            };
            let mut built = Built::new();
            for op in &input.ops {
                let Some(msg) = built.plain(op, &lp).and_then(quantix_message) else {
                    continue;
                };
                built.message(msg, |m, dst| {
                    if legacy {
                        LegacyEncoder::with_max(FUZZ_MAX_FRAME).encode(m, dst)
                    } else {
                        QuantixEncoder::with_max(FUZZ_MAX_FRAME).encode(m, dst)
                    }
                });
            }
            if legacy {
                built.check(|| LegacyDecoder::with_max(FUZZ_MAX_FRAME));
            } else {
                built.check(|| QuantixDecoder::with_max(FUZZ_MAX_FRAME));
            }
        }
        ChunkedProtocol::Fcexec => {
            let lp = LpConfig {
                max: FUZZ_MAX_FRAME,
                ..LpConfig::u32_be()
            };
            let mut built = Built::new();
            for op in &input.ops {
                let Some(msg) = built.plain(op, &lp).and_then(fcexec_message) else {
                    continue;
                };
                built.message(msg, |m, dst| {
                    FcexecEncoder::with_max(FUZZ_MAX_FRAME).encode(m, dst)
                });
            }
            built.check(|| FcexecDecoder::with_max(None, FUZZ_MAX_FRAME));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<StreamOp> {
        vec![
            StreamOp::Ping {
                id: "1".into(),
                sequence: 7,
                at: Some((1_700_000_000, 5)),
            },
            StreamOp::Cut,
            StreamOp::Execute {
                id: "2".into(),
                command: "/bin/echo".into(),
                args: vec!["hi".into()],
            },
            StreamOp::Log("a line".into()),
            StreamOp::Cut,
            StreamOp::Cut,
            StreamOp::FileData {
                id: "3".into(),
                data: vec![0, 1, 2, 255],
            },
            StreamOp::Result {
                exit_code: -1,
                output: "out".into(),
            },
            StreamOp::Pong {
                id: "1".into(),
                sequence: 7,
                version: "1.0".into(),
            },
        ]
    }

    #[test]
    fn valid_streams_decode_to_their_messages_in_every_protocol() {
        for protocol in [
            ChunkedProtocol::Quantix,
            ChunkedProtocol::Legacy,
            ChunkedProtocol::Fcexec,
        ] {
            chunked(ChunkedInput {
                protocol,
                ops: ops(),
            });
        }
    }

    #[test]
    fn hostile_ops_only_need_to_agree() {
        let mut hostile = ops();
        hostile.insert(1, StreamOp::Bytes(b"QTX\x01\xff\xff\xff\xff".to_vec()));
        hostile.insert(4, StreamOp::Framed(b"{\"type\":\"log\"}".to_vec()));
        hostile.push(StreamOp::Framed(Vec::new()));
        hostile.push(StreamOp::Bytes(vec![0, 0, 1]));
        for protocol in [
            ChunkedProtocol::Quantix,
            ChunkedProtocol::Legacy,
            ChunkedProtocol::Fcexec,
        ] {
            chunked(ChunkedInput {
                protocol,
                ops: hostile.clone(),
            });
        }
    }
}
