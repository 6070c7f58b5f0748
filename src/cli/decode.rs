//! `guestwire decode`: read a raw byte stream (a file or standard input) and print one line per
//! frame — offset, length, message type and key fields — or one JSON object per line. A pcap or
//! pcapng capture (recognised by its magic number) is decoded per connection instead, by
//! [`decode_capture`](super::decode_capture).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use bytes::BytesMut;
use clap::{Args, ValueEnum};

use super::{CliError, Outcome};
use crate::capture::sniff_format;
use crate::wire::detect::{DETECT_WINDOW, detect};
use crate::wire::frame::parse_size;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{DecodeOptions, FrameDecoder, open_decoder};
use crate::wire::{DecodedFrame, Direction, WireError};

/// Arguments of `guestwire decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The stream to decode, or a pcap/pcapng capture (recognised by its magic number); `-` (the
    /// default) reads standard input.
    #[arg(default_value = "-")]
    pub input: String,
    /// quantix, quantix-legacy, fcexec, volant, qga, ch-api, raw, lp:WIDTH:ENDIAN[:MAX][:magic=HEX],
    /// or auto (guess from the first bytes and say why).
    #[arg(long, short, default_value = "auto")]
    pub protocol: String,
    /// Which way the stream flows, where the protocol's messages differ by direction.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// The stream starts with a hybrid-vsock handshake line (`CONNECT n` or `OK n`).
    /// Detected by itself with `--protocol auto`.
    #[arg(long)]
    pub handshake: bool,
    /// Largest frame accepted (e.g. 65536, 64K, 16M); defaults to the protocol's own limit.
    #[arg(long, value_parser = parse_size_arg)]
    pub max_frame: Option<u64>,
    /// One JSON object per line: offset, len, type, message; errors as error, offset, hex.
    /// For a capture: one object per frame and connection event, then a summary object.
    #[arg(long)]
    pub json: bool,
    /// Keep reading a capture that is still being written, until interrupted (Ctrl-C or
    /// SIGTERM), then print the summary. Captures (pcap/pcapng) only.
    #[arg(long)]
    pub follow: bool,
}

/// `--direction` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// Host to guest: requests.
    ToGuest,
    /// Guest to host: replies and events.
    ToHost,
}

impl From<DirectionArg> for Direction {
    fn from(d: DirectionArg) -> Self {
        match d {
            DirectionArg::ToGuest => Direction::ToGuest,
            DirectionArg::ToHost => Direction::ToHost,
        }
    }
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    match parse_size(s) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a size like 65536, 64K or 16M")),
    }
}

/// Read size per call: bounds what is buffered beyond one frame.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// Counts for the closing summary.
#[derive(Debug, Default)]
struct Tally {
    frames: u64,
    errors: u64,
    bytes: u64,
    by_type: std::collections::BTreeMap<String, u64>,
}

/// Runs `guestwire decode`.
pub fn run(args: DecodeArgs) -> Result<Outcome, CliError> {
    let mut input: Box<dyn Read> = if args.input == "-" {
        Box::new(io::stdin().lock())
    } else {
        let path = PathBuf::from(&args.input);
        Box::new(File::open(&path).map_err(|source| CliError::Io {
            path: args.input.clone(),
            source,
        })?)
    };
    let read_err = |source| CliError::Io {
        path: args.input.clone(),
        source,
    };
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut eof = false;
    if args.follow && args.input == "-" {
        return Err(CliError::Usage(
            "--follow reads a capture file that is still being written; give its path".into(),
        ));
    }
    if args.follow {
        // The capture may not have its header yet: wait for the magic number.
        let stop = super::decode_capture::stop_on_signals();
        while buf.len() < 4 {
            if read_some(&mut input, &mut buf).map_err(read_err)?
                && !super::decode_capture::wait_for_more(&stop)
            {
                return Ok(Outcome::Ok);
            }
        }
        if sniff_format(&buf).is_none() {
            return Err(CliError::Usage(format!(
                "{}: --follow reads pcap or pcapng captures, and this is not one",
                args.input
            )));
        }
        return super::decode_capture::run(&args, input, buf.to_vec(), Some(stop));
    }
    while buf.len() < 4 && !eof {
        eof = read_some(&mut input, &mut buf).map_err(read_err)?;
    }
    if sniff_format(&buf).is_some() {
        return super::decode_capture::run(&args, input, buf.to_vec(), None);
    }
    let auto = args.protocol == "auto";

    let (protocol, handshake) = if auto {
        while buf.len() < DETECT_WINDOW && !eof {
            eof = read_some(&mut input, &mut buf).map_err(read_err)?;
        }
        let d = detect(&buf);
        match d.protocol {
            Some(p) => {
                eprintln!("guestwire: detected {p}: {}", d.reason);
                (p, d.handshake_len > 0 || args.handshake)
            }
            None => {
                eprintln!("guestwire: empty stream, nothing to decode");
                return Ok(Outcome::Ok);
            }
        }
    } else {
        let p: Protocol = args
            .protocol
            .parse()
            .map_err(|e| CliError::Usage(format!("{e}")))?;
        (p, args.handshake)
    };

    let opts = DecodeOptions {
        direction: args.direction.map(Direction::from),
        max_frame: args.max_frame,
        handshake,
        // Text lines never print the message's JSON form.
        lean: !args.json,
    };
    let mut decoder = open_decoder(&protocol, &opts);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    let write_err = |source| CliError::Io {
        path: "-".into(),
        source,
    };

    loop {
        drain(&mut *decoder, &mut buf, false, &args, &mut tally, &mut out).map_err(write_err)?;
        if eof {
            break;
        }
        eof = read_some(&mut input, &mut buf).map_err(read_err)?;
    }
    drain(&mut *decoder, &mut buf, true, &args, &mut tally, &mut out).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    tally.bytes = decoder.offset();

    let types: Vec<String> = tally
        .by_type
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    eprintln!(
        "guestwire: {protocol}: {} frames, {} errors, {} bytes{}{}",
        tally.frames,
        tally.errors,
        tally.bytes,
        if types.is_empty() { "" } else { " — " },
        types.join(", ")
    );
    Ok(if tally.errors == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// Reads one chunk into `buf`; true at end of stream.
pub(super) fn read_some(input: &mut dyn Read, buf: &mut BytesMut) -> io::Result<bool> {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        match input.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn drain(
    decoder: &mut dyn FrameDecoder,
    buf: &mut BytesMut,
    eof: bool,
    args: &DecodeArgs,
    tally: &mut Tally,
    out: &mut impl Write,
) -> io::Result<()> {
    loop {
        let item = if eof {
            decoder.decode_eof(buf)
        } else {
            decoder.decode(buf)
        };
        let Some(item) = item else { return Ok(()) };
        match item {
            Ok(frame) => {
                tally.frames += 1;
                *tally.by_type.entry(frame.type_name.clone()).or_default() += 1;
                print_frame(&frame, args.json, out)?;
            }
            Err(err) => {
                tally.errors += 1;
                print_error(&err, args.json, out)?;
            }
        }
    }
}

fn print_frame(frame: &DecodedFrame, json: bool, out: &mut impl Write) -> io::Result<()> {
    if json {
        writeln!(out, "{}", frame.to_json())
    } else {
        writeln!(
            out,
            "{:>10}  {:>8}  {:<28} {}",
            frame.offset, frame.len, frame.type_name, frame.summary
        )
    }
}

fn print_error(err: &WireError, json: bool, out: &mut impl Write) -> io::Result<()> {
    if json {
        writeln!(out, "{}", err.to_json())
    } else {
        writeln!(
            out,
            "{:>10}  {:>8}  ERROR {:<22} {err}",
            err.offset(),
            "-",
            err.kind()
        )
    }
}
