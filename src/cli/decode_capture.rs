//! `guestwire decode CAP.pcap`: a capture decoded per connection, tshark-style — one line per
//! frame (time since the first record, connection, direction arrow, type, size, key fields) with
//! connection events and errors in place, then a summary (frames per type, bytes per direction,
//! request → reply latency p50/p99, unanswered requests, closes and resets). `--json` prints
//! each item as a JSON object and the summary as a last object. `--follow` keeps reading a
//! capture that is still being written until SIGINT or SIGTERM, then prints the summary.
//! Exit status: 0 clean, 1 bad frames or records, 2 usage or IO errors.

use std::io::{self, BufWriter, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::decode::DecodeArgs;
use super::{CliError, Outcome};
use crate::capture::summary::Summary;
use crate::capture::{
    CaptureItem, CaptureReader, ItemKind, ProtocolChoice, ReadError, Reassembler,
};
use crate::wire::protocol::Protocol;

/// How often `--follow` looks for new records at the end of the file.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// How long to wait for the signal handlers to be installed before reading anyway.
const SIGNAL_SETUP_DEADLINE: Duration = Duration::from_secs(5);

/// A flag set by SIGINT or SIGTERM, for `--follow` (handlers installed before this returns).
pub(super) fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let int = signal(SignalKind::interrupt());
            let term = signal(SignalKind::terminate());
            let _ = ready_tx.send(());
            let (Ok(mut int), Ok(mut term)) = (int, term) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            set.store(true, Ordering::SeqCst);
        });
    });
    let _ = ready_rx.recv_timeout(SIGNAL_SETUP_DEADLINE);
    flag
}

/// Waits one poll interval for a growing file; false once a stop signal came.
pub(super) fn wait_for_more(stop: &AtomicBool) -> bool {
    if stop.load(Ordering::SeqCst) {
        return false;
    }
    std::thread::sleep(FOLLOW_POLL);
    !stop.load(Ordering::SeqCst)
}

/// Runs capture mode on `input`, whose first bytes (`prefix`) were read to sniff the magic.
/// `stop`: follow the file until the flag is set.
pub(super) fn run(
    args: &DecodeArgs,
    input: Box<dyn Read>,
    prefix: Vec<u8>,
    stop: Option<Arc<AtomicBool>>,
) -> Result<Outcome, CliError> {
    if args.direction.is_some() || args.handshake {
        return Err(CliError::Usage(
            "--direction and --handshake are for raw streams: a capture records each chunk's \
             direction, and hybrid-vsock handshakes are detected per connection"
                .into(),
        ));
    }
    let choice = if args.protocol == "auto" {
        ProtocolChoice::Auto
    } else {
        ProtocolChoice::Fixed(
            args.protocol
                .parse::<Protocol>()
                .map_err(|e| CliError::Usage(e.to_string()))?,
        )
    };
    let mut reader = CaptureReader::with_prefix(input, &prefix);
    let mut reassembler = Reassembler::new(choice, args.max_frame).lean(!args.json);
    let mut summary = Summary::new();
    let stdout = io::stdout();
    let mut out = Printer {
        out: BufWriter::with_capacity(OUT_BUFFER, stdout.lock()),
        json: args.json,
        start: None,
        line: Vec::with_capacity(256),
    };
    let write_err = |source| CliError::Io {
        path: "-".into(),
        source,
    };
    let mut wait = || stop.as_deref().is_some_and(wait_for_more);
    loop {
        if stop.as_deref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            break;
        }
        let next = if stop.is_some() {
            reader.next_following(&mut wait)
        } else {
            reader.next_record()
        };
        match next {
            None => break,
            Some(Ok(record)) => {
                out.start.get_or_insert(record.time_ns);
                reassembler.push(&record);
            }
            Some(Err(ReadError::Capture(e))) => reassembler.push_error(e),
            Some(Err(ReadError::Io(source))) => {
                return Err(CliError::Io {
                    path: args.input.clone(),
                    source,
                });
            }
        }
        while let Some(item) = reassembler.poll() {
            summary.observe(&item);
            out.item(&item).map_err(write_err)?;
        }
        if stop.is_some() {
            out.out.flush().map_err(write_err)?;
        }
    }
    if stop.is_none() {
        reassembler.finish();
        while let Some(item) = reassembler.poll() {
            summary.observe(&item);
            out.item(&item).map_err(write_err)?;
        }
    }
    let records = reader.parser().records();
    let bytes = reassembler.bytes();
    if args.json {
        writeln!(out.out, "{}", summary.to_json(bytes, records)).map_err(write_err)?;
    } else {
        write!(out.out, "{}", summary.to_text(bytes, records)).map_err(write_err)?;
        if stop.is_some() && reassembler.open_connections() > 0 {
            writeln!(
                out.out,
                "  still open when reading stopped: {} connections",
                reassembler.open_connections()
            )
            .map_err(write_err)?;
        }
    }
    out.out.flush().map_err(write_err)?;
    Ok(if summary.errors() == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// The output buffer: one `write` per 256 KiB of lines.
const OUT_BUFFER: usize = 256 * 1024;

/// Prints items as text lines or JSON objects.
struct Printer<W: Write> {
    out: W,
    json: bool,
    /// Time of the first record: text times are relative to it.
    start: Option<u64>,
    /// The text line being built (reused: no allocation per line).
    line: Vec<u8>,
}

impl<W: Write> Printer<W> {
    fn item(&mut self, item: &CaptureItem) -> io::Result<()> {
        let rel = item
            .time_ns
            .saturating_sub(self.start.unwrap_or(item.time_ns));
        if self.json {
            let mut v = item.to_json();
            if let Some(o) = v.as_object_mut() {
                o.insert("rel_ns".into(), serde_json::json!(rel));
            }
            return writeln!(self.out, "{v}");
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        text_line(&mut line, rel, item)?;
        let written = self.out.write_all(&line);
        self.line = line;
        written
    }
}

/// Right-aligns `n` in `width` columns, padded with `fill` (as `{n:>width$}` / `{n:0width$}`).
fn push_u64(out: &mut Vec<u8>, n: u64, width: usize, fill: u8) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    if len < width {
        out.resize(out.len() + width - len, fill);
    }
    out.extend_from_slice(&digits[i..]);
}

/// Left-aligns `s` in `width` characters (as `{s:<width$}`).
fn push_padded(out: &mut Vec<u8>, s: &str, width: usize) {
    out.extend_from_slice(s.as_bytes());
    let chars = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    if chars < width {
        out.resize(out.len() + width - chars, b' ');
    }
}

/// One item as a text line: `SECS.MICROS  #CONN KIND…`, with `\n`. Frames, by far the most
/// common items, are formatted by hand (no `fmt` machinery); the rest with `write!`.
fn text_line(out: &mut Vec<u8>, rel: u64, item: &CaptureItem) -> io::Result<()> {
    push_u64(out, rel / 1_000_000_000, 4, b' ');
    out.push(b'.');
    push_u64(out, (rel % 1_000_000_000) / 1000, 6, b'0');
    out.extend_from_slice(b"  ");
    if item.conn == 0 {
        push_padded(out, "-", 4);
    } else {
        out.push(b'#');
        push_u64(out, item.conn, 0, b' ');
        let width = 2usize.saturating_sub(item.conn.checked_ilog10().unwrap_or(0) as usize);
        out.extend(std::iter::repeat_n(b' ', width));
    }
    out.push(b' ');
    match &item.kind {
        ItemKind::Frame { direction, frame } => {
            out.extend_from_slice(direction.arrow().as_bytes());
            out.extend_from_slice(b"  ");
            push_padded(out, &frame.type_name, 26);
            out.push(b' ');
            push_u64(out, frame.len, 8, b' ');
            out.extend_from_slice(b"  ");
            out.extend_from_slice(frame.summary.as_bytes());
            out.push(b'\n');
            Ok(())
        }
        ItemKind::Opened { host, guest, by } => match by {
            Some(side) => writeln!(
                out,
                "⇄  open host {host} ↔ guest {guest} ({} connected)",
                side.name()
            ),
            None => writeln!(
                out,
                "⇄  open host {host} ↔ guest {guest} (no connect record: the capture began \
                     mid-connection)"
            ),
        },
        ItemKind::Protocol {
            protocol,
            handshake,
            reason,
        } => writeln!(
            out,
            "·  protocol {protocol}{}: {reason}",
            if *handshake {
                " after a handshake line"
            } else {
                ""
            }
        ),
        ItemKind::Error { direction, error } => writeln!(
            out,
            "{}  ERROR {:<20} {error}",
            direction.arrow(),
            error.kind()
        ),
        ItemKind::Snapped { direction, missing } => writeln!(
            out,
            "{}  ERROR snapped              the snaplen cut {missing} bytes: the stream \
                 misses them",
            direction.arrow()
        ),
        ItemKind::AfterClose { direction, bytes } => writeln!(
            out,
            "{}  ERROR after_close          {bytes} bytes after their sender disconnected \
                 (not decoded)",
            direction.arrow()
        ),
        ItemKind::Closed { by, reset } => writeln!(
            out,
            "✕  {} {}",
            by.name(),
            if *reset { "reset" } else { "closed" }
        ),
        ItemKind::Ended { reason } => writeln!(out, "✕  end ({})", reason.name()),
        ItemKind::BadRecord { error } => {
            writeln!(out, "!  ERROR {:<20} {error}", error.kind())
        }
    }
}
