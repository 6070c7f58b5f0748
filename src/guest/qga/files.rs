//! `guest-file-open`/`-read`/`-write`/`-flush`/`-close` as qemu-ga 7.2 answers them, with every
//! path confined to the mock's root by [`Sandbox`] (an absolute guest path is taken relative to
//! the root).
//!
//! Measured on qemu-ga 7.2.22: handles count from 1000; `guest-file-read` reads 4096 bytes when no
//! `count` is given, refuses a count below 0 or above 48 MiB (`value 'N' is invalid for argument
//! count`), and answers `{"count": N, "buf-b64": "…", "eof": B}` where `eof` says that the read
//! hit the end of the file (so an exact read to the end says `false`, the next one `true`);
//! `guest-file-write` answers `{"count": N, "eof": false}`; an unknown handle is
//! `handle 'N' has not been found`; reading a write-only handle is
//! `failed to read file: Bad file descriptor`; an open that fails is
//! `failed to open file 'PATH' (mode: 'MODE'): <strerror>`.
//!
//! The mock reopens the path for every read and write (qemu-ga keeps a `FILE *`), so a file
//! renamed while open is not followed; a path outside the root is `Permission denied`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde_json::{Value, json};

use super::args::{ArgError, Args};
use crate::guest::files::{MAX_CHUNK_SIZE, Sandbox, SandboxError, WriteOptions};

/// qemu-ga's first file handle.
pub const FIRST_HANDLE: i64 = 1000;
/// qemu-ga's `QGA_READ_COUNT_DEFAULT`.
pub const READ_COUNT_DEFAULT: i64 = 4096;
/// The largest `count` qemu-ga 7.2 accepts for a read (48 MiB, measured).
pub const READ_COUNT_MAX: i64 = 48 * 1024 * 1024;

/// What an open mode allows (`r`, `w`, `a`, each with optional `b` and `+`).
#[derive(Debug, Clone, Copy)]
struct Mode {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
}

fn parse_mode(mode: &str) -> Option<Mode> {
    let (base, rest) = mode.split_at_checked(1)?;
    let plus = match rest {
        "" | "b" => false,
        "+" | "b+" | "+b" => true,
        _ => return None,
    };
    Some(match base {
        "r" => Mode {
            read: true,
            write: plus,
            append: false,
            truncate: false,
            create: false,
        },
        "w" => Mode {
            read: plus,
            write: true,
            append: false,
            truncate: true,
            create: true,
        },
        "a" => Mode {
            read: plus,
            write: true,
            append: true,
            truncate: false,
            create: true,
        },
        _ => return None,
    })
}

#[derive(Debug)]
struct OpenFile {
    path: String,
    mode: Mode,
    pos: u64,
}

/// The open file handles.
#[derive(Debug)]
pub(super) struct FileTable {
    next: i64,
    open: BTreeMap<i64, OpenFile>,
}

impl Default for FileTable {
    fn default() -> Self {
        Self {
            next: FIRST_HANDLE,
            open: BTreeMap::new(),
        }
    }
}

/// The C library's text for the error behind a sandbox failure.
fn strerror(e: &SandboxError) -> String {
    use nix::errno::Errno;
    let errno = match e {
        SandboxError::NotFound { .. } => Errno::ENOENT,
        SandboxError::NotADirectory { .. } => Errno::ENOTDIR,
        SandboxError::NotAFile { .. } => Errno::EISDIR,
        SandboxError::AlreadyExists { .. } => Errno::EEXIST,
        SandboxError::SymlinkLoop { .. } => Errno::ELOOP,
        SandboxError::Io { source, .. } => match source.raw_os_error() {
            Some(n) => Errno::from_raw(n),
            None => return source.to_string(),
        },
        _ => Errno::EACCES,
    };
    super::strerror(errno)
}

/// glib's `g_base64_decode` after qemu's check of the alphabet (`qbase64_decode`).
fn decode_base64(text: &str) -> Result<Vec<u8>, ArgError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let invalid = || "Base64 data contains invalid characters".to_string();
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n'))
    {
        return Err(invalid());
    }
    let compact: String = text.chars().filter(|&c| c != '\n').collect();
    LENIENT
        .decode(compact.trim_end_matches('='))
        .or_else(|_| general_purpose::STANDARD.decode(&compact))
        .map_err(|_| invalid())
}

impl FileTable {
    fn get(&mut self, handle: i64) -> Result<&mut OpenFile, ArgError> {
        self.open
            .get_mut(&handle)
            .ok_or_else(|| format!("handle '{handle}' has not been found"))
    }

    /// `guest-file-open {path, mode?}` → the handle.
    pub(super) async fn open(
        &mut self,
        sandbox: Option<&Sandbox>,
        mut args: Args<'_>,
    ) -> Result<Value, ArgError> {
        let path = args.str("path")?.to_string();
        let mode_text = args.opt_str("mode")?.unwrap_or("r").to_string();
        args.finish()?;
        let mode = parse_mode(&mode_text)
            .ok_or_else(|| format!("invalid file open mode '{mode_text}'"))?;
        let fail =
            |why: String| format!("failed to open file '{path}' (mode: '{mode_text}'): {why}");
        let sandbox = sandbox.ok_or_else(|| fail(super::strerror(nix::errno::Errno::EACCES)))?;
        let p = path.clone();
        let opened = if mode.create {
            let opts = WriteOptions {
                append: mode.append,
                truncate: mode.truncate,
                ..WriteOptions::default()
            };
            sandbox
                .run(move |s| s.write(&p, &[], &opts).map(drop))
                .await
        } else {
            sandbox.run(move |s| s.stat(&p).map(drop)).await
        };
        opened.map_err(|e| fail(strerror(&e)))?;
        let handle = self.next;
        self.next += 1;
        self.open.insert(handle, OpenFile { path, mode, pos: 0 });
        Ok(json!(handle))
    }

    /// `guest-file-read {handle, count?}`.
    pub(super) async fn read(
        &mut self,
        sandbox: Option<&Sandbox>,
        mut args: Args<'_>,
    ) -> Result<Value, ArgError> {
        let handle = args.int("handle")?;
        let count = args.opt_int("count")?;
        args.finish()?;
        let file = self.get(handle)?;
        let count = count.unwrap_or(READ_COUNT_DEFAULT);
        if !(0..=READ_COUNT_MAX).contains(&count) {
            return Err(format!("value '{count}' is invalid for argument count"));
        }
        let (Some(sandbox), true) = (sandbox, file.mode.read) else {
            return Err(format!(
                "failed to read file: {}",
                super::strerror(nix::errno::Errno::EBADF)
            ));
        };
        if count == 0 {
            return Ok(json!({"count": 0, "buf-b64": "", "eof": false}));
        }
        let (path, pos) = (file.path.clone(), file.pos);
        let want = count as u64;
        let data = sandbox
            .run(move |s| {
                let chunk = u32::try_from(want).unwrap_or(MAX_CHUNK_SIZE);
                let mut data = Vec::new();
                for piece in s.read(&path, pos, want, chunk)? {
                    data.extend_from_slice(&piece?.data);
                }
                Ok(data)
            })
            .await
            .map_err(|e| format!("failed to read file: {}", strerror(&e)))?;
        file.pos += data.len() as u64;
        Ok(json!({
            "count": data.len(),
            "buf-b64": STANDARD.encode(&data),
            "eof": (data.len() as u64) < want,
        }))
    }

    /// `guest-file-write {handle, buf-b64, count?}`.
    pub(super) async fn write(
        &mut self,
        sandbox: Option<&Sandbox>,
        mut args: Args<'_>,
    ) -> Result<Value, ArgError> {
        let handle = args.int("handle")?;
        let b64 = args.str("buf-b64")?;
        let count = args.opt_int("count")?;
        args.finish()?;
        let file = self.get(handle)?;
        let mut data = decode_base64(b64)?;
        let count = count.unwrap_or(data.len() as i64);
        if count < 0 || count > data.len() as i64 {
            return Err(format!("value '{count}' is invalid for argument count"));
        }
        data.truncate(count as usize);
        let (Some(sandbox), true) = (sandbox, file.mode.write) else {
            return Err(format!(
                "failed to write to file: {}",
                super::strerror(nix::errno::Errno::EBADF)
            ));
        };
        let opts = WriteOptions {
            offset: file.pos,
            append: file.mode.append,
            ..WriteOptions::default()
        };
        let path = file.path.clone();
        let written = sandbox
            .run(move |s| s.write(&path, &data, &opts))
            .await
            .map_err(|e| format!("failed to write to file: {}", strerror(&e)))?;
        file.pos += written;
        Ok(json!({"count": written, "eof": false}))
    }

    /// `guest-file-flush {handle}`: nothing is buffered, so only the handle is checked.
    pub(super) fn flush(&mut self, mut args: Args<'_>) -> Result<Value, ArgError> {
        let handle = args.int("handle")?;
        args.finish()?;
        self.get(handle)?;
        Ok(json!({}))
    }

    /// `guest-file-close {handle}`.
    pub(super) fn close(&mut self, mut args: Args<'_>) -> Result<Value, ArgError> {
        let handle = args.int("handle")?;
        args.finish()?;
        self.get(handle)?;
        self.open.remove(&handle);
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_base64_follow_qemu() {
        assert!(parse_mode("zz").is_none());
        assert!(parse_mode("").is_none());
        let m = parse_mode("r+b").expect("mode");
        assert!(m.read && m.write && !m.create);
        let m = parse_mode("ab").expect("mode");
        assert!(!m.read && m.write && m.append);
        assert_eq!(decode_base64("aGVsbG8=").expect("b64"), b"hello");
        assert_eq!(decode_base64("aGVsbG8").expect("lenient"), b"hello");
        assert_eq!(decode_base64("").expect("empty"), b"");
        assert_eq!(
            decode_base64("!!!").expect_err("bad"),
            "Base64 data contains invalid characters"
        );
    }
}
