//! Async framed streams over the sans-IO codecs of [`crate::wire`]: [`FramedReader`] feeds a
//! [`Decoder`] from any `AsyncRead`, and [`FramedWriter`] writes an [`Encoder`]'s frames whole.
//!
//! The reader reads only when the decoder says it needs more bytes, and at most [`READ_CHUNK`]
//! bytes at a time, so its buffer never holds more than one incomplete frame (bounded by the
//! decoder's maximum frame size) plus one read. It tells apart the ways a stream ends: a clean
//! end between frames (`None`), an end inside a frame (the decoder's
//! [`WireError::Truncated`]), a reset, and other IO errors; each
//! error says how many bytes of an unfinished frame were buffered. The bytes already read stay
//! available through [`FramedReader::into_parts`], because a hybrid-vsock client must keep its
//! buffered reader after the handshake (a guest may answer `OK 1234\n` and its first frame in one
//! segment), as seed 001's `DialGuest` does.

use std::io;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::wire::{Decoder, EncodeError, Encoder, Frame, WireError};

/// Most bytes one read asks for.
pub const READ_CHUNK: usize = 16 * 1024;

/// Whether an IO error means the peer reset or abandoned the connection.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// A failure while reading frames.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Bad input, as the decoder reported it; an end of stream inside a frame is
    /// [`WireError::Truncated`]. Unless the stream has ended, reading can go on (the decoder
    /// resynchronises where its protocol allows).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The peer reset the connection (`ECONNRESET`, `ECONNABORTED`, `EPIPE`).
    #[error(
        "connection reset by the peer with {partial_bytes} bytes of an unfinished frame buffered"
    )]
    Reset {
        /// Bytes buffered that did not make a whole frame.
        partial_bytes: usize,
    },
    /// No frame arrived within the deadline given to [`FramedReader::next_timeout`]. Reading can
    /// go on: nothing read so far is lost.
    #[error("no frame within {after:?} ({partial_bytes} bytes of an unfinished frame buffered)")]
    TimedOut {
        /// The deadline that passed.
        after: Duration,
        /// Bytes buffered that did not make a whole frame.
        partial_bytes: usize,
    },
    /// The decoder kept asking for more bytes beyond the reader's buffer limit (a decoder bug, or
    /// a limit set lower than the protocol's maximum frame).
    #[error("buffered {buffered} bytes without a frame, over the limit of {limit}")]
    BufferLimit {
        /// The limit.
        limit: usize,
        /// Bytes buffered.
        buffered: usize,
    },
    /// Any other IO error.
    #[error("read failed with {partial_bytes} bytes of an unfinished frame buffered: {source}")]
    Io {
        /// The OS error.
        #[source]
        source: io::Error,
        /// Bytes buffered that did not make a whole frame.
        partial_bytes: usize,
    },
}

impl ReadError {
    /// The error's kind as a stable snake_case name: the wire error's kind (`truncated`,
    /// `oversize`, …), or `reset`, `timed_out`, `buffer_limit`, `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Wire(e) => e.kind(),
            Self::Reset { .. } => "reset",
            Self::TimedOut { .. } => "timed_out",
            Self::BufferLimit { .. } => "buffer_limit",
            Self::Io { .. } => "io",
        }
    }

    /// Whether the stream ended inside a frame.
    pub fn is_truncated(&self) -> bool {
        matches!(self, Self::Wire(WireError::Truncated { .. }))
    }
}

/// Reads frames from `R` with the decoder `D`.
#[derive(Debug)]
pub struct FramedReader<R, D> {
    inner: R,
    decoder: D,
    buf: BytesMut,
    limit: Option<usize>,
    /// The stream reported end of file; only `decode_eof` remains.
    eof: bool,
    /// Nothing more will be yielded.
    done: bool,
}

impl<R, D> FramedReader<R, D>
where
    R: AsyncRead + Unpin,
    D: Decoder,
{
    /// A reader with an empty buffer.
    pub fn new(inner: R, decoder: D) -> Self {
        Self::from_parts(inner, decoder, BytesMut::new())
    }

    /// A reader that starts with bytes already read from `inner` (e.g. after a handshake).
    pub fn from_parts(inner: R, decoder: D, buf: BytesMut) -> Self {
        Self {
            inner,
            decoder,
            buf,
            limit: None,
            eof: false,
            done: false,
        }
    }

    /// Fails with [`ReadError::BufferLimit`] when the decoder asks for more bytes while `limit`
    /// are buffered. A safety net against decoders that do not bound themselves; set it above
    /// the protocol's largest frame.
    pub fn with_buffer_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The stream, the decoder and the bytes read but not yet decoded.
    pub fn into_parts(self) -> (R, D, BytesMut) {
        (self.inner, self.decoder, self.buf)
    }

    /// Bytes read but not yet decoded.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream, mutably (e.g. to write a request on a duplex stream).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The next frame or error; `None` once the stream has ended cleanly, or after a reset or IO
    /// error has been reported.
    ///
    /// Cancel-safe: if the future is dropped, no byte already read is lost.
    pub async fn next(&mut self) -> Option<Result<Frame<D::Message>, ReadError>> {
        loop {
            if self.done {
                return None;
            }
            if self.eof {
                let item = self.decoder.decode_eof(&mut self.buf);
                if item.is_none() {
                    self.done = true;
                }
                return item.map(|r| r.map_err(ReadError::Wire));
            }
            if let Some(item) = self.decoder.decode(&mut self.buf) {
                return Some(item.map_err(ReadError::Wire));
            }
            if let Some(limit) = self.limit
                && self.buf.len() >= limit
            {
                self.done = true;
                return Some(Err(ReadError::BufferLimit {
                    limit,
                    buffered: self.buf.len(),
                }));
            }
            self.buf.reserve(READ_CHUNK);
            let mut room = (&mut self.buf).limit(READ_CHUNK);
            match self.inner.read_buf(&mut room).await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    self.done = true;
                    let partial_bytes = self.buf.len();
                    return Some(Err(if is_reset(&source) {
                        ReadError::Reset { partial_bytes }
                    } else {
                        ReadError::Io {
                            source,
                            partial_bytes,
                        }
                    }));
                }
            }
        }
    }

    /// Like [`next`](Self::next), but gives up after `after` with [`ReadError::TimedOut`]; the
    /// reader stays usable.
    pub async fn next_timeout(
        &mut self,
        after: Duration,
    ) -> Option<Result<Frame<D::Message>, ReadError>> {
        match tokio::time::timeout(after, self.next()).await {
            Ok(item) => item,
            Err(_elapsed) => Some(Err(ReadError::TimedOut {
                after,
                partial_bytes: self.buf.len(),
            })),
        }
    }
}

/// A failure while writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message cannot be encoded; nothing was written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The peer reset or closed the connection after `written` of the frame's `frame_len` bytes.
    #[error("connection reset by the peer after {written} of {frame_len} bytes of the frame")]
    Reset {
        /// Bytes of the frame written.
        written: usize,
        /// The frame's length.
        frame_len: usize,
    },
    /// Any other IO error, after `written` of the frame's `frame_len` bytes.
    #[error("write failed after {written} of {frame_len} bytes of the frame: {source}")]
    Io {
        /// The OS error.
        #[source]
        source: io::Error,
        /// Bytes of the frame written.
        written: usize,
        /// The frame's length.
        frame_len: usize,
    },
}

impl WriteError {
    /// The error's kind as a stable snake_case name: `encode`, `reset` or `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Encode(_) => "encode",
            Self::Reset { .. } => "reset",
            Self::Io { .. } => "io",
        }
    }
}

/// Writes whole frames to `W` with the encoder `E`.
#[derive(Debug)]
pub struct FramedWriter<W, E> {
    inner: W,
    encoder: E,
    buf: BytesMut,
}

impl<W, E> FramedWriter<W, E>
where
    W: AsyncWrite + Unpin,
{
    /// A writer.
    pub fn new(inner: W, encoder: E) -> Self {
        Self {
            inner,
            encoder,
            buf: BytesMut::new(),
        }
    }

    /// Encodes `message`, writes the whole frame and flushes; returns the frame's length.
    ///
    /// Not cancel-safe: dropping the future may leave part of a frame written.
    pub async fn send<M: ?Sized>(&mut self, message: &M) -> Result<usize, WriteError>
    where
        E: Encoder<M>,
    {
        self.buf.clear();
        self.encoder.encode(message, &mut self.buf)?;
        let frame = self.buf.split().freeze();
        self.write_frame(&frame).await?;
        Ok(frame.len())
    }

    /// Writes `bytes` as they are and flushes: for malformed frames, garbage and split handshakes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.write_frame(bytes).await
    }

    async fn write_frame(&mut self, frame: &[u8]) -> Result<(), WriteError> {
        let frame_len = frame.len();
        let mut written = 0;
        let fail = |source: io::Error, written| {
            if is_reset(&source) || source.kind() == io::ErrorKind::WriteZero {
                WriteError::Reset { written, frame_len }
            } else {
                WriteError::Io {
                    source,
                    written,
                    frame_len,
                }
            }
        };
        while written < frame_len {
            match self.inner.write(&frame[written..]).await {
                Ok(0) => {
                    return Err(fail(io::ErrorKind::WriteZero.into(), written));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(e, written)),
            }
        }
        self.inner.flush().await.map_err(|e| fail(e, written))
    }

    /// The encoder.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying stream, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The stream and the encoder.
    pub fn into_parts(self) -> (W, E) {
        (self.inner, self.encoder)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use tokio::io::{AsyncWriteExt, ReadBuf};

    use super::*;
    use crate::wire::frame::{LpConfig, LpDecoder, LpEncoder};

    /// A reader that returns scripted chunks, then scripted errors, then end of file.
    struct Script {
        steps: VecDeque<io::Result<Vec<u8>>>,
        reads: usize,
    }

    impl Script {
        fn new(steps: Vec<io::Result<Vec<u8>>>) -> Self {
            Self {
                steps: steps.into(),
                reads: 0,
            }
        }
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            match self.steps.pop_front() {
                None => Poll::Ready(Ok(())),
                Some(Err(e)) => Poll::Ready(Err(e)),
                Some(Ok(mut chunk)) => {
                    let n = chunk.len().min(buf.remaining());
                    buf.put_slice(&chunk[..n]);
                    if n < chunk.len() {
                        self.steps.push_front(Ok(chunk.split_off(n)));
                    }
                    Poll::Ready(Ok(()))
                }
            }
        }
    }

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut enc = LpEncoder::new(LpConfig::u32_be());
        let mut out = BytesMut::new();
        for p in payloads {
            enc.encode(*p, &mut out).expect("encode");
        }
        out.to_vec()
    }

    async fn collect<R: AsyncRead + Unpin>(
        reader: &mut FramedReader<R, LpDecoder>,
    ) -> Vec<Result<Bytes, String>> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            match reader.next().await {
                None => return out,
                Some(Ok(f)) => out.push(Ok(f.message)),
                Some(Err(e)) => out.push(Err(e.kind().to_string())),
            }
        }
        panic!("more than 1000 items");
    }

    #[tokio::test]
    async fn frames_split_across_arbitrary_reads() {
        let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        let refs: Vec<&[u8]> = payloads
            .iter()
            .map(|p| &p[..])
            .filter(|p| !p.is_empty())
            .collect();
        let stream = frames(&refs);
        for split in [1usize, 2, 3, 5, 7, 64, 1000, stream.len()] {
            let chunks = stream.chunks(split).map(|c| Ok(c.to_vec())).collect();
            let mut r = FramedReader::new(Script::new(chunks), LpDecoder::new(LpConfig::u32_be()));
            let got = collect(&mut r).await;
            let want: Vec<Result<Bytes, String>> =
                refs.iter().map(|p| Ok(Bytes::copy_from_slice(p))).collect();
            assert_eq!(got, want, "split {split}");
            assert!(r.next().await.is_none(), "stays ended");
        }
    }

    /// What the reader yields for `chunks`, as (payload or error kind) items.
    fn read_all(chunks: Vec<Vec<u8>>) -> Vec<Result<Vec<u8>, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let steps = chunks.into_iter().map(Ok).collect();
            let mut r = FramedReader::new(Script::new(steps), LpDecoder::new(qtx()));
            let mut out = Vec::new();
            for _ in 0..10_000 {
                match r.next().await {
                    None => return out,
                    Some(Ok(f)) => out.push(Ok(f.message.to_vec())),
                    Some(Err(e)) => out.push(Err(e.kind().to_string())),
                }
            }
            panic!("more than 10000 items");
        })
    }

    fn qtx() -> LpConfig {
        LpConfig {
            magic: b"QTX\x01".to_vec(),
            max: 512,
            ..LpConfig::u32_be()
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// Any split of any stream (valid frames, garbage, a cut at any point) gives the same
        /// frames and errors as the sans-IO reference driver fed the whole stream at once.
        #[test]
        fn any_split_matches_the_reference_driver(
            items in prop::collection::vec(
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 1..600).prop_map(|p| (true, p)),
                    prop::collection::vec(any::<u8>(), 1..40).prop_map(|g| (false, g)),
                ],
                0..12,
            ),
            cut in any::<usize>(),
            splits in prop::collection::vec(1usize..100, 1..20),
        ) {
            let mut stream = BytesMut::new();
            let mut enc = LpEncoder::new(LpConfig { max: u64::MAX >> 1, ..qtx() });
            for (is_frame, bytes) in &items {
                if *is_frame {
                    enc.encode(&bytes[..], &mut stream).expect("encode");
                } else {
                    stream.extend_from_slice(bytes);
                }
            }
            let stream = &stream[..cut % (stream.len() + 1)];
            let want: Vec<Result<Vec<u8>, String>> =
                crate::wire::decode_all(&mut LpDecoder::new(qtx()), stream)
                    .into_iter()
                    .map(|r| r.map(|f| f.message.to_vec()).map_err(|e| e.kind().to_string()))
                    .collect();
            let mut chunks = Vec::new();
            let mut rest = stream;
            let mut i = 0;
            while !rest.is_empty() {
                let n = splits[i % splits.len()].min(rest.len());
                chunks.push(rest[..n].to_vec());
                rest = &rest[n..];
                i += 1;
            }
            prop_assert_eq!(read_all(chunks), want);
        }
    }

    #[tokio::test]
    async fn frames_over_a_duplex_with_a_tiny_buffer() {
        let (mut w, r) = tokio::io::duplex(3);
        let stream = frames(&[b"hello", b"world", &[0xAB; 5000]]);
        let writer = tokio::spawn(async move {
            w.write_all(&stream).await.expect("write");
        });
        let mut reader = FramedReader::new(r, LpDecoder::new(LpConfig::u32_be()));
        let got = collect(&mut reader).await;
        writer.await.expect("writer");
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].as_ref().expect("frame").len(), 5000);
    }

    #[tokio::test]
    async fn eof_mid_frame_is_truncated_and_clean_eof_is_none() {
        let stream = frames(&[b"one", b"two"]);
        let cut = stream.len() - 2;
        let mut r = FramedReader::new(
            Script::new(vec![Ok(stream[..cut].to_vec())]),
            LpDecoder::new(LpConfig::u32_be()),
        );
        assert_eq!(
            &r.next().await.expect("item").expect("frame").message[..],
            b"one"
        );
        let e = r.next().await.expect("item").expect_err("truncated");
        assert!(e.is_truncated(), "{e}");
        assert!(matches!(
            e,
            ReadError::Wire(WireError::Truncated {
                offset: 7,
                expected: 7,
                available: 5,
                ..
            })
        ));
        assert!(r.next().await.is_none());

        let mut r = FramedReader::new(
            Script::new(vec![Ok(frames(&[b"x"]))]),
            LpDecoder::new(LpConfig::u32_be()),
        );
        assert!(r.next().await.expect("item").is_ok());
        assert!(r.next().await.is_none(), "clean end between frames");
    }

    #[tokio::test]
    async fn a_reset_reports_the_partial_frame() {
        let mut stream = frames(&[b"whole"]);
        stream.extend_from_slice(&[0, 0, 0, 9, b'p', b'a']);
        let mut r = FramedReader::new(
            Script::new(vec![Ok(stream), Err(io::ErrorKind::ConnectionReset.into())]),
            LpDecoder::new(LpConfig::u32_be()),
        );
        assert!(r.next().await.expect("item").is_ok());
        match r.next().await.expect("item") {
            Err(ReadError::Reset { partial_bytes: 6 }) => {}
            other => panic!("expected reset, got {other:?}"),
        }
        assert!(r.next().await.is_none());
        assert_eq!(
            r.buffered(),
            &[0, 0, 0, 9, b'p', b'a'],
            "kept for the report"
        );

        let mut r = FramedReader::new(
            Script::new(vec![Err(io::Error::other("disk on fire"))]),
            LpDecoder::new(LpConfig::u32_be()),
        );
        let e = r.next().await.expect("item").expect_err("io");
        assert_eq!(e.kind(), "io");
    }

    #[tokio::test]
    async fn a_4gib_length_is_a_typed_error_without_allocation() {
        // u32::MAX: the largest a 4-byte field can claim.
        let mut r = FramedReader::new(
            Script::new(vec![Ok(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3])]),
            LpDecoder::new(LpConfig::u32_be()),
        );
        let e = r.next().await.expect("item").expect_err("oversize");
        assert!(
            matches!(
                e,
                ReadError::Wire(WireError::Oversize {
                    len: 0xffff_ffff,
                    ..
                })
            ),
            "{e}"
        );
        assert!(r.next().await.is_none(), "no magic: the rest is discarded");
        let (_, _, buf) = r.into_parts();
        assert!(
            buf.capacity() <= 2 * READ_CHUNK,
            "capacity {}",
            buf.capacity()
        );

        // Exactly 4 GiB in an 8-byte field.
        let cfg: LpConfig = "lp:8:be:16M".parse().expect("spec");
        let mut header = (4u64 << 30).to_be_bytes().to_vec();
        header.extend_from_slice(b"tail");
        let mut r = FramedReader::new(Script::new(vec![Ok(header)]), LpDecoder::new(cfg));
        match r.next().await.expect("item") {
            Err(ReadError::Wire(WireError::Oversize { len, max, .. })) => {
                assert_eq!((len, max), (4 << 30, 16 << 20));
            }
            other => panic!("expected oversize, got {other:?}"),
        }
        let (_, _, buf) = r.into_parts();
        assert!(
            buf.capacity() <= 2 * READ_CHUNK,
            "capacity {}",
            buf.capacity()
        );
    }

    #[tokio::test]
    async fn reads_only_when_needed_and_the_buffer_stays_bounded() {
        let max = 4096usize;
        let cfg = LpConfig {
            max: max as u64,
            ..LpConfig::u32_be()
        };
        let payload = vec![7u8; max];
        let mut enc = LpEncoder::new(cfg.clone());
        let mut stream = BytesMut::new();
        for _ in 0..50 {
            enc.encode(&payload[..], &mut stream).expect("encode");
        }
        // One read hands over everything at once; the reader must still take it in chunks.
        let mut r = FramedReader::new(Script::new(vec![Ok(stream.to_vec())]), LpDecoder::new(cfg));
        let mut n = 0;
        while let Some(item) = r.next().await {
            item.expect("frame");
            n += 1;
            assert!(
                r.buffered().len() <= max + 4 + READ_CHUNK,
                "buffered {}",
                r.buffered().len()
            );
            assert!(n <= 50);
        }
        assert_eq!(n, 50);
        // 50 frames of 4100 bytes in chunks of READ_CHUNK, plus the read that saw EOF.
        let reads = r.get_ref().reads;
        assert_eq!(reads, (50 * 4100usize).div_ceil(READ_CHUNK) + 1);
    }

    #[tokio::test]
    async fn into_parts_keeps_bytes_read_past_a_frame() {
        // As after a hybrid-vsock handshake: the reply and the first frame arrive together.
        let mut stream = frames(&[b"first"]);
        stream.extend_from_slice(&frames(&[b"second"])[..5]);
        let mut r = FramedReader::new(
            Script::new(vec![Ok(stream), Ok(frames(&[b"second"])[5..].to_vec())]),
            LpDecoder::new(LpConfig::u32_be()),
        );
        assert_eq!(
            &r.next().await.expect("item").expect("frame").message[..],
            b"first"
        );
        let (inner, _old, buf) = r.into_parts();
        assert_eq!(buf.len(), 5);
        let mut r = FramedReader::from_parts(inner, LpDecoder::new(LpConfig::u32_be()), buf);
        assert_eq!(
            &r.next().await.expect("item").expect("frame").message[..],
            b"second"
        );
    }

    #[tokio::test]
    async fn buffer_limit_stops_a_runaway_decoder() {
        let cfg = LpConfig {
            max: 1 << 20,
            ..LpConfig::u32_be()
        };
        let mut header = 100_000u32.to_be_bytes().to_vec();
        header.extend(vec![0u8; 50_000]);
        let mut r = FramedReader::new(Script::new(vec![Ok(header)]), LpDecoder::new(cfg))
            .with_buffer_limit(20_000);
        let e = r.next().await.expect("item").expect_err("limit");
        assert_eq!(e.kind(), "buffer_limit");
        assert!(r.buffered().len() < 20_000 + READ_CHUNK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_and_the_reader_goes_on() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut reader = FramedReader::new(r, LpDecoder::new(LpConfig::u32_be()));
        let stream = frames(&[b"late"]);
        w.write_all(&stream[..3]).await.expect("write");
        let start = tokio::time::Instant::now();
        match reader.next_timeout(Duration::from_secs(30)).await {
            Some(Err(ReadError::TimedOut {
                after,
                partial_bytes: 3,
            })) => {
                assert_eq!(after, Duration::from_secs(30));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        w.write_all(&stream[3..]).await.expect("write");
        let f = reader
            .next_timeout(Duration::from_secs(30))
            .await
            .expect("item")
            .expect("frame");
        assert_eq!(&f.message[..], b"late");
    }

    #[tokio::test]
    async fn writer_sends_whole_frames_and_names_encode_errors() {
        let (w, r) = tokio::io::duplex(2);
        let cfg = LpConfig {
            max: 10,
            ..LpConfig::u32_be()
        };
        let mut writer = FramedWriter::new(w, LpEncoder::new(cfg.clone()));
        let mut reader = FramedReader::new(r, LpDecoder::new(cfg));
        let send = tokio::spawn(async move {
            let n = writer.send(&b"abc"[..]).await.expect("send");
            assert_eq!(n, 7);
            let e = writer.send(&[0u8; 11][..]).await.expect_err("too large");
            assert_eq!(e.kind(), "encode");
            writer.send_raw(&[0, 0, 0, 1, b'z']).await.expect("raw");
        });
        assert_eq!(
            &reader.next().await.expect("item").expect("f").message[..],
            b"abc"
        );
        assert_eq!(
            &reader.next().await.expect("item").expect("f").message[..],
            b"z"
        );
        send.await.expect("sender");
        assert!(reader.next().await.is_none());
    }

    #[tokio::test]
    async fn writer_reports_a_closed_peer() {
        let (w, r) = tokio::io::duplex(4);
        drop(r);
        let mut writer = FramedWriter::new(w, LpEncoder::new(LpConfig::u32_be()));
        let e = writer.send(&b"hello"[..]).await.expect_err("closed");
        assert_eq!(e.kind(), "reset", "{e}");
    }
}
