//! `guestwire replay CAP`: replay one connection of a capture (the first with frames, or
//! `--conn N`) against a live peer — thin tokio adapters over the pure [`crate::replay`] core.
//!
//! - `--as guest --listen EP`: serve the recorded guest side to every host that connects (until
//!   SIGINT/SIGTERM, or one connection with `--once`). Live requests get the recorded replies with
//!   the live ids; unsolicited frames go out at their recorded times since the connection opened.
//!   A request the recording has no (more) replies for is logged and not answered. A connection
//!   idle longer than `--timeout` is closed.
//! - `--as host --connect EP`: send the recorded host frames in order and diff the live replies
//!   against the recording. Each wait for replies has the `--timeout` deadline. Exit 0 when they
//!   match, 1 with the diff, 2 for usage and IO errors.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{CliError, Outcome};
use crate::capture::{CaptureReader, ProtocolChoice, Reassembler};
use crate::io::{BoxStream, Endpoint, Listener};
use crate::replay::{
    DiffOptions, GuestOutcome, HostAction, ReplayGuest, ReplayHost, Session, SessionBuilder,
};
use crate::wire::hybrid::Flavour;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{DecodeOptions, open_decoder};
use crate::wire::{DecodedFrame, Direction};

/// Which side to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Serve the recorded guest side.
    Guest,
    /// Send the recorded host side and diff the replies.
    Host,
}

/// Arguments of `guestwire replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng).
    pub capture: std::path::PathBuf,
    /// Which side to play.
    #[arg(long = "as", value_enum)]
    pub role: Role,
    /// For --as guest: where to serve (unix:PATH, hvsock:PATH:PORT, tcp:HOST:PORT, ...).
    #[arg(long, required_if_eq("role", "guest"), conflicts_with = "connect")]
    pub listen: Option<String>,
    /// For --as host: the live agent (unix:PATH, hvsock:PATH:PORT, tcp:HOST:PORT, ...).
    #[arg(long, required_if_eq("role", "host"))]
    pub connect: Option<String>,
    /// The capture's connection to replay (default: the first that carries frames).
    #[arg(long, value_name = "N")]
    pub conn: Option<u64>,
    /// The protocol: auto (as the capture decodes) or a name.
    #[arg(long, default_value = "auto")]
    pub protocol: String,
    /// Field to ignore in the diff (dotted path from the message root, or a bare name matching
    /// at any depth); repeatable. Added to the protocol's defaults.
    #[arg(long, value_name = "FIELD")]
    pub ignore: Vec<String>,
    /// Compare every field (ids and timestamps too) and every frame's length.
    #[arg(long)]
    pub strict: bool,
    /// Deadline for each wait (connect, replies, an idle served connection), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// For --as guest: serve one connection, then exit.
    #[arg(long)]
    pub once: bool,
    /// For --as guest with hvsock: whose handshake to answer as.
    #[arg(long, default_value = "firecracker")]
    pub flavour: Flavour,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `guestwire replay`.
pub fn run(args: ReplayArgs) -> Result<Outcome, CliError> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(CliError::Usage(
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    let session = load(&args)?;
    if !crate::replay::codec::can_encode(&session.protocol) {
        return Err(CliError::Usage(
            crate::replay::ReplayError::Unsupported(session.protocol.to_string()).to_string(),
        ));
    }
    let runtime = super::runtime()?;
    match args.role {
        Role::Host => runtime.block_on(host(&args, session)),
        Role::Guest => runtime.block_on(guest(&args, Arc::new(session))),
    }
}

/// Loads the session from the capture.
fn load(args: &ReplayArgs) -> Result<Session, CliError> {
    let io_err = |source| CliError::Io {
        path: args.capture.display().to_string(),
        source,
    };
    let choice = match args.protocol.as_str() {
        "auto" => ProtocolChoice::Auto,
        name => ProtocolChoice::Fixed(
            name.parse::<Protocol>()
                .map_err(|e| CliError::Usage(format!("--protocol: {e}")))?,
        ),
    };
    let mut reader = CaptureReader::new(File::open(&args.capture).map_err(io_err)?);
    let mut reassembler = Reassembler::new(choice, None);
    let mut builder = SessionBuilder::new(args.conn);
    let mut done = false;
    while !done {
        match reader.next_record() {
            Some(Ok(record)) => reassembler.push(&record),
            Some(Err(e)) => {
                return Err(CliError::Usage(format!("{}: {e}", args.capture.display())));
            }
            None => {
                reassembler.finish();
                done = true;
            }
        }
        while let Some(item) = reassembler.poll() {
            if builder.push(&item) {
                done = true;
            }
        }
    }
    builder
        .finish()
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.capture.display())))
}

fn endpoint(flag: &str, value: Option<&String>) -> Result<Endpoint, CliError> {
    value
        .ok_or_else(|| CliError::Usage(format!("{flag} is required")))?
        .parse()
        .map_err(|e| CliError::Usage(format!("{flag}: {e}")))
}

/// Reads `stream`, decoding frames flowing `direction`, into `tx` until EOF or an error.
async fn read_frames(
    mut stream: tokio::io::ReadHalf<BoxStream>,
    protocol: Protocol,
    direction: Direction,
    tx: mpsc::Sender<DecodedFrame>,
) {
    let opts = DecodeOptions {
        direction: Some(direction),
        ..DecodeOptions::default()
    };
    let mut decoder = open_decoder(&protocol, &opts);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        while let Some(item) = decoder.decode(&mut buf) {
            match item {
                Ok(frame) => {
                    if tx.send(frame).await.is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("guestwire: replay: bad live frame: {e}"),
            }
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn host(args: &ReplayArgs, session: Session) -> Result<Outcome, CliError> {
    let ep = endpoint("--connect", args.connect.as_ref())?;
    let deadline = Duration::from_secs_f64(args.timeout);
    let stream = crate::io::connect::connect(&ep, deadline)
        .await
        .map_err(|e| CliError::Usage(format!("cannot connect to {ep}: {e}")))?;
    let protocol = session.protocol.clone();
    let opts = DiffOptions::for_protocol(&protocol, &args.ignore, args.strict);
    let mut replay = ReplayHost::new(session, opts);
    let (read, mut write) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel(64);
    let reader = tokio::spawn(read_frames(read, protocol, Direction::ToHost, tx));
    let mut open = true;
    loop {
        let action = replay
            .next_action()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        match action {
            HostAction::Send {
                bytes, type_name, ..
            } => match tokio::time::timeout(deadline, write.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ => {
                    eprintln!("guestwire: replay: cannot send {type_name}; stopping");
                    break;
                }
            },
            HostAction::Wait if open => match tokio::time::timeout(deadline, rx.recv()).await {
                Ok(Some(frame)) => replay.on_live(frame),
                Ok(None) => {
                    open = false;
                    replay.give_up_waiting();
                }
                Err(_) => replay.give_up_waiting(),
            },
            HostAction::Wait => replay.give_up_waiting(),
            HostAction::Done => break,
        }
    }
    let _ = tokio::time::timeout(deadline, write.shutdown()).await;
    reader.abort();
    let report = replay.report();
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "match": report.matches(), "sent": report.sent,
            "compared": report.compared, "diffs": report.diffs,
        });
        let _ = writeln!(out, "{v}");
    } else {
        for d in &report.diffs {
            let _ = writeln!(out, "{d}");
        }
        let _ = writeln!(
            out,
            "replay: {} host frames sent, {} guest frames compared, {}",
            report.sent,
            report.compared,
            if report.matches() {
                "replies match".to_string()
            } else {
                format!("{} differences", report.diffs.len())
            }
        );
    }
    Ok(if report.matches() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

async fn guest(args: &ReplayArgs, session: Arc<Session>) -> Result<Outcome, CliError> {
    let ep = endpoint("--listen", args.listen.as_ref())?;
    let bind_err =
        |e: crate::io::ListenError| CliError::Usage(format!("cannot listen on {ep}: {e}"));
    let mut listener = match &ep {
        Endpoint::Hvsock { path, port } => Listener::bind_hvsock(path, &[*port], args.flavour)
            .await
            .map_err(bind_err)?,
        other => Listener::bind(other).await.map_err(bind_err)?,
    };
    // Encode once up front so that a bad recording is a usage error, not a per-connection one.
    ReplayGuest::new(session.clone())
        .unsolicited()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!(
        "guestwire: replaying connection {} ({}) as the guest on {}",
        session.conn,
        session.protocol,
        listener.endpoint()
    );
    let idle = Duration::from_secs_f64(args.timeout);
    let stop = super::decode_capture::stop_on_signals();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = wait_flag(stop.clone()) => break,
        };
        match accepted {
            Ok(conn) => {
                let s = session.clone();
                let peer = conn.peer.clone();
                tasks.spawn(async move {
                    if let Err(e) = serve_one(s, conn.stream, idle).await {
                        eprintln!("guestwire: replay: {peer}: {e}");
                    }
                });
                if args.once {
                    break;
                }
            }
            Err(crate::io::ListenError::Exhausted { .. }) => break,
            Err(e) => eprintln!("guestwire: accept failed: {e}"),
        }
    }
    // Let served connections finish (each is bounded by its idle deadline).
    while tasks.join_next().await.is_some() {}
    Ok(Outcome::Ok)
}

async fn wait_flag(flag: Arc<std::sync::atomic::AtomicBool>) {
    while !flag.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves one live connection as the recorded guest.
async fn serve_one(session: Arc<Session>, stream: BoxStream, idle: Duration) -> Result<(), String> {
    let start = tokio::time::Instant::now();
    let mut replay = ReplayGuest::new(session.clone());
    let mut schedule = replay
        .unsolicited()
        .map_err(|e| e.to_string())?
        .into_iter()
        .peekable();
    let (read, mut write) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel(64);
    let reader = tokio::spawn(read_frames(
        read,
        session.protocol.clone(),
        Direction::ToGuest,
        tx,
    ));
    let mut last = tokio::time::Instant::now();
    let result = loop {
        let due = schedule.peek().map(|s| start + s.at);
        let next = tokio::select! {
            _ = tokio::time::sleep_until(due.unwrap_or(last + idle)), if due.is_some() => None,
            f = tokio::time::timeout_at(last + idle, rx.recv()) => Some(f),
        };
        let frames = match next {
            None => match schedule.next() {
                Some(s) => vec![(s.type_name, s.bytes)],
                None => continue,
            },
            Some(Err(_)) => break Err(format!("idle for {idle:?}; closing")),
            Some(Ok(None)) => break Ok(()),
            Some(Ok(Some(frame))) => {
                last = tokio::time::Instant::now();
                match replay.on_request(&frame).map_err(|e| e.to_string())? {
                    GuestOutcome::Reply { frames, .. } => frames,
                    GuestOutcome::NoMatch { type_name } => {
                        eprintln!(
                            "guestwire: replay: no recorded reply left for {type_name}; not answering"
                        );
                        continue;
                    }
                }
            }
        };
        for (_, bytes) in frames {
            match tokio::time::timeout(idle, write.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ => return Err("cannot send a reply; closing".into()),
            }
        }
    };
    let _ = tokio::time::timeout(idle, write.shutdown()).await;
    reader.abort();
    result
}
