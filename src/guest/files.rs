//! File operations of the mock guest agent, confined to a root directory (`--root`): the bodies
//! of LimiQuantix's `file_read`, `file_write`, `file_stat`, `list_directory`, `create_directory`
//! and `file_delete` (PROTOCOLS.md §2, `quantix`), and of any other protocol's file commands.
//!
//! # Confinement
//! Guest paths are strings from the peer. A [`Sandbox`] treats the root like a chroot: an
//! absolute guest path is taken relative to the root, and every path is resolved component by
//! component with `symlink_metadata`/`read_link`:
//! - `..` that would climb above the root is rejected ([`SandboxError::Escape`]), not clamped;
//! - a symlink is followed by splicing its target into the remaining components: a relative
//!   target is resolved from the link's directory, an absolute target is a *host* path and is
//!   allowed only when it lies under the (canonical) root; anything else is an escape;
//! - more than [`MAX_SYMLINK_HOPS`] links is [`SandboxError::SymlinkLoop`]; a NUL byte is
//!   [`SandboxError::InvalidPath`].
//!
//! The resolved host path contains no symlinks, and files are then opened with `O_NOFOLLOW`
//! (and `O_NONBLOCK`, so a FIFO placed in the root cannot hang an open). A process that swaps a
//! directory for a symlink between resolution and use could still race it: the root is a test
//! fixture owned by whoever runs the mock, which is the threat model here.
//!
//! # Blocking
//! Everything uses `std::fs` and blocks. From async code run an operation through
//! [`Sandbox::run`], which moves it onto tokio's blocking pool (`spawn_blocking`).
//!
//! Error messages name the guest path as the peer sent it, never the host root, so they can go
//! back verbatim in a reply's `error` field.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Most symlinks one resolution follows (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = 40;
/// Chunk size of a read whose request says 0 (a guestwire choice).
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Largest chunk a read returns, whatever the request says: 4 MiB keeps a chunk and its envelope
/// well under the 16 MiB maximum message of the `quantix` and `fcexec` framings.
pub const MAX_CHUNK_SIZE: u32 = 4 * 1024 * 1024;
/// Mode of directories created without an explicit mode (before the umask).
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// Mode of files created without an explicit mode (before the umask).
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// Why a file operation failed. `Display` is the text for a reply's `error` field.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The guest path is malformed (e.g. contains a NUL byte).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The guest path as sent.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path, through `..` or a symlink, leads outside the root.
    #[error("path escapes the sandbox root: {path}")]
    Escape {
        /// The guest path as sent.
        path: String,
    },
    /// Resolution followed more than [`MAX_SYMLINK_HOPS`] symlinks.
    #[error("too many levels of symbolic links: {path}")]
    SymlinkLoop {
        /// The guest path as sent.
        path: String,
    },
    /// The path (or one of its parents) does not exist.
    #[error("no such file or directory: {path}")]
    NotFound {
        /// The guest path as sent.
        path: String,
    },
    /// The operation needs a regular file and the path is something else.
    #[error("not a regular file: {path}")]
    NotAFile {
        /// The guest path as sent.
        path: String,
    },
    /// The operation needs a directory (or a parent is not one).
    #[error("not a directory: {path}")]
    NotADirectory {
        /// The guest path as sent.
        path: String,
    },
    /// The path exists and the operation would create it.
    #[error("already exists: {path}")]
    AlreadyExists {
        /// The guest path as sent.
        path: String,
    },
    /// The operation would remove or replace the root itself.
    #[error("refusing to {op} the sandbox root")]
    Root {
        /// The refused operation.
        op: &'static str,
    },
    /// Any other error from the operating system.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "list", …).
        op: &'static str,
        /// The guest path as sent.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    /// A short stable code for the error kind, for error events and logs: `invalid_path`,
    /// `escape`, `symlink_loop`, `not_found`, `not_a_file`, `not_a_directory`, `already_exists`,
    /// `root`, `io`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPath { .. } => "invalid_path",
            Self::Escape { .. } => "escape",
            Self::SymlinkLoop { .. } => "symlink_loop",
            Self::NotFound { .. } => "not_found",
            Self::NotAFile { .. } => "not_a_file",
            Self::NotADirectory { .. } => "not_a_directory",
            Self::AlreadyExists { .. } => "already_exists",
            Self::Root { .. } => "root",
            Self::Io { .. } => "io",
        }
    }

    /// Maps an OS error on `path` to the matching typed variant, else [`SandboxError::Io`].
    fn from_io(op: &'static str, path: &str, source: io::Error) -> Self {
        let path = path.to_owned();
        match source.kind() {
            io::ErrorKind::NotFound => Self::NotFound { path },
            io::ErrorKind::NotADirectory => Self::NotADirectory { path },
            io::ErrorKind::IsADirectory => Self::NotAFile { path },
            io::ErrorKind::AlreadyExists => Self::AlreadyExists { path },
            _ => Self::Io { op, path, source },
        }
    }
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (only reported when not followed: list entries, `delete`).
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// Metadata of one path, as `file_stat` and `list_directory` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The last component (`/` for the root); non-UTF-8 bytes are replaced.
    pub name: String,
    /// Where the path resolved to inside the root, as an absolute guest path (`/a/b`).
    pub path: String,
    /// What the path names.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Last modification time, when the filesystem records one.
    pub modified: Option<SystemTime>,
}

impl FileInfo {
    fn new(name: String, path: String, meta: &Metadata) -> Self {
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Directory
        } else if ft.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Self {
            name,
            path,
            kind,
            size: meta.len(),
            mode: meta.permissions().mode() & 0o7777,
            modified: meta.modified().ok(),
        }
    }
}

/// A directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Where the directory resolved to inside the root.
    pub path: String,
    /// The entries, sorted by name; symlinks are reported, not followed.
    pub entries: Vec<FileInfo>,
    /// How many entries matched (before `max_entries` applied).
    pub total: usize,
    /// True when `max_entries` cut the list.
    pub truncated: bool,
}

/// Options of [`Sandbox::write`] (the fields of LimiQuantix's `FileWriteRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// Where to write; ignored with `append`.
    pub offset: u64,
    /// Write at the end of the file.
    pub append: bool,
    /// Truncate the file to zero length before writing. `FileWriteRequest` has no such flag; a
    /// mock guest that wants "offset 0 replaces the file" sets it for the first chunk.
    pub truncate: bool,
    /// Create missing parent directories (mode [`DEFAULT_DIR_MODE`]).
    pub create_parents: bool,
    /// Permission bits of a newly created file (the umask applies); an existing file keeps its
    /// mode. `None` (the protocol's 0) means [`DEFAULT_FILE_MODE`].
    pub mode: Option<u32>,
}

/// One chunk of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadChunk {
    /// 0-based index of the chunk within this read.
    pub chunk_number: u32,
    /// File offset of `data`'s first byte.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// True when the chunk ends at the end of the file.
    pub eof: bool,
    /// True for the last chunk of this read (end of file, or end of the requested length).
    pub last: bool,
}

/// An open file being read in chunks: metadata up front, then the chunks, read lazily (each
/// `next` is a blocking read; at least one chunk, possibly empty, is always produced).
#[derive(Debug)]
pub struct FileRead {
    /// Size of the file when it was opened.
    pub total_size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Last modification time.
    pub modified: Option<SystemTime>,
    file: File,
    path: String,
    pos: u64,
    end: u64,
    chunk_size: usize,
    chunk_number: u32,
    done: bool,
}

impl Iterator for FileRead {
    type Item = Result<ReadChunk, SandboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let remaining = self.end.saturating_sub(self.pos);
        let want = usize::try_from(remaining).map_or(self.chunk_size, |r| r.min(self.chunk_size));
        let mut data = vec![0u8; want];
        let mut filled = 0;
        let mut hit_eof = false;
        while filled < want {
            match self.file.read(&mut data[filled..]) {
                Ok(0) => {
                    hit_eof = true; // the file shrank since it was opened
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(SandboxError::from_io("read", &self.path, e)));
                }
            }
        }
        data.truncate(filled);
        let offset = self.pos;
        self.pos += filled as u64;
        let eof = hit_eof || self.pos >= self.total_size;
        let last = eof || self.pos >= self.end;
        self.done = last;
        let chunk = ReadChunk {
            chunk_number: self.chunk_number,
            offset,
            data,
            eof,
            last,
        };
        self.chunk_number = self.chunk_number.saturating_add(1);
        Some(Ok(chunk))
    }
}

/// Whether the last component of a path is followed when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// Follow every symlink (read, write, stat, list, mkdir).
    All,
    /// Leave a final symlink alone (delete removes the link, not its target).
    NotLast,
}

/// A step of a path still to resolve.
#[derive(Debug)]
enum Step {
    Parent,
    Name(OsString),
}

/// A guest path resolved to a host path inside the root.
#[derive(Debug)]
struct Resolved {
    /// Host path: the root joined with `parts`.
    host: PathBuf,
    /// Components below the root, symlinks already replaced (except a final one with
    /// [`Follow::NotLast`]).
    parts: Vec<OsString>,
}

impl Resolved {
    fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The resolved location as an absolute guest path.
    fn guest_path(&self) -> String {
        guest_path_of(&self.parts)
    }
}

fn guest_path_of(parts: &[OsString]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push('/');
        out.push_str(&part.to_string_lossy());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Pushes the components of `path` onto `stack` so that popping yields them in order.
fn push_steps(stack: &mut Vec<Step>, path: &Path) {
    let steps: Vec<Step> = path
        .components()
        .filter_map(|c| match c {
            Component::ParentDir => Some(Step::Parent),
            Component::Normal(name) => Some(Step::Name(name.to_owned())),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(steps.into_iter().rev());
}

/// `O_NOFOLLOW | O_NONBLOCK` for `OpenOptionsExt::custom_flags`.
fn open_flags() -> i32 {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    i32::try_from(flags.bits()).unwrap_or(0)
}

/// File operations confined to one root directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    root: Arc<PathBuf>,
}

impl Sandbox {
    /// A sandbox rooted at `root`, which must be an existing directory; it is canonicalised, so
    /// absolute symlink targets must name it by its canonical path to count as inside.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, SandboxError> {
        let shown = root.as_ref().display().to_string();
        let root = fs::canonicalize(root.as_ref())
            .map_err(|e| SandboxError::from_io("open root", &shown, e))?;
        let meta =
            fs::metadata(&root).map_err(|e| SandboxError::from_io("open root", &shown, e))?;
        if !meta.is_dir() {
            return Err(SandboxError::NotADirectory { path: shown });
        }
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The canonical host path of the root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `op` on tokio's blocking pool: the way to call the (blocking) operations from async
    /// code, e.g. `sandbox.run(move |s| s.stat(&path)).await`.
    pub async fn run<T, F>(&self, op: F) -> Result<T, SandboxError>
    where
        F: FnOnce(&Sandbox) -> Result<T, SandboxError> + Send + 'static,
        T: Send + 'static,
    {
        let sandbox = self.clone();
        tokio::task::spawn_blocking(move || op(&sandbox))
            .await
            .unwrap_or_else(|join| {
                Err(SandboxError::Io {
                    op: "run",
                    path: String::new(),
                    source: io::Error::other(join.to_string()),
                })
            })
    }

    /// Resolves `guest` to a host path inside the root (see the module docs).
    fn resolve(&self, guest: &str, follow: Follow) -> Result<Resolved, SandboxError> {
        if guest.as_bytes().contains(&0) {
            return Err(SandboxError::InvalidPath {
                path: guest.replace('\0', "\\0"),
                reason: "contains a NUL byte",
            });
        }
        let escape = || SandboxError::Escape {
            path: guest.to_owned(),
        };
        let mut pending = Vec::new();
        push_steps(&mut pending, Path::new(guest));
        let mut parts: Vec<OsString> = Vec::new();
        // Length of `parts` when a component was first missing: below it nothing exists, so the
        // rest resolves lexically (a missing name cannot be a symlink).
        let mut missing_from: Option<usize> = None;
        let mut hops = 0u32;
        while let Some(step) = pending.pop() {
            let name = match step {
                Step::Parent => {
                    if parts.pop().is_none() {
                        return Err(escape());
                    }
                    if missing_from.is_some_and(|depth| parts.len() <= depth) {
                        missing_from = None;
                    }
                    continue;
                }
                Step::Name(name) => name,
            };
            if missing_from.is_some() {
                parts.push(name);
                continue;
            }
            let host = self.host_path(&parts).join(&name);
            let meta = match fs::symlink_metadata(&host) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing_from = Some(parts.len());
                    parts.push(name);
                    continue;
                }
                Err(e) => return Err(SandboxError::from_io("resolve", guest, e)),
            };
            let is_last = pending.is_empty();
            if !meta.file_type().is_symlink() || (is_last && follow == Follow::NotLast) {
                parts.push(name);
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(SandboxError::SymlinkLoop {
                    path: guest.to_owned(),
                });
            }
            let target =
                fs::read_link(&host).map_err(|e| SandboxError::from_io("resolve", guest, e))?;
            if target.as_os_str().as_bytes().contains(&0) {
                return Err(escape());
            }
            if target.is_absolute() {
                let inside = target
                    .strip_prefix(self.root.as_path())
                    .map_err(|_| escape())?;
                parts.clear();
                push_steps(&mut pending, inside);
            } else {
                push_steps(&mut pending, &target);
            }
        }
        Ok(Resolved {
            host: self.host_path(&parts),
            parts,
        })
    }

    fn host_path(&self, parts: &[OsString]) -> PathBuf {
        let mut host = self.root.as_ref().clone();
        host.extend(parts);
        host
    }

    /// Opens the regular file at `path` for reading `len` bytes (0: to the end) from `offset`,
    /// in chunks of `chunk_size` bytes (0: [`DEFAULT_CHUNK_SIZE`]; capped at [`MAX_CHUNK_SIZE`]).
    /// An offset at or past the end gives one empty chunk with `eof` set.
    pub fn read(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        chunk_size: u32,
    ) -> Result<FileRead, SandboxError> {
        let resolved = self.resolve(path, Follow::All)?;
        let not_a_file = || SandboxError::NotAFile {
            path: path.to_owned(),
        };
        let meta = fs::symlink_metadata(&resolved.host)
            .map_err(|e| SandboxError::from_io("read", path, e))?;
        if !meta.is_file() {
            return Err(not_a_file());
        }
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(open_flags())
            .open(&resolved.host)
            .map_err(|e| SandboxError::from_io("read", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| SandboxError::from_io("read", path, e))?;
        if !meta.is_file() {
            return Err(not_a_file());
        }
        let total_size = meta.len();
        let start = offset.min(total_size);
        let end = if len == 0 {
            total_size
        } else {
            start.saturating_add(len).min(total_size)
        };
        file.seek(SeekFrom::Start(start))
            .map_err(|e| SandboxError::from_io("read", path, e))?;
        let chunk_size = match chunk_size {
            0 => DEFAULT_CHUNK_SIZE,
            n => n.min(MAX_CHUNK_SIZE),
        };
        Ok(FileRead {
            total_size,
            mode: meta.permissions().mode() & 0o7777,
            modified: meta.modified().ok(),
            file,
            path: path.to_owned(),
            pos: start,
            end,
            chunk_size: usize::try_from(chunk_size).unwrap_or(usize::MAX),
            chunk_number: 0,
            done: false,
        })
    }

    /// Writes `data` to the regular file at `path` as `opts` says, creating it when missing;
    /// returns how many bytes were written.
    pub fn write(&self, path: &str, data: &[u8], opts: &WriteOptions) -> Result<u64, SandboxError> {
        let resolved = self.resolve(path, Follow::All)?;
        if resolved.is_root() {
            return Err(SandboxError::Root { op: "write" });
        }
        match fs::symlink_metadata(&resolved.host) {
            Ok(meta) if !meta.is_file() => {
                return Err(SandboxError::NotAFile {
                    path: path.to_owned(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = resolved.host.parent()
                    && opts.create_parents
                {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(DEFAULT_DIR_MODE)
                        .create(parent)
                        .map_err(|e| SandboxError::from_io("create parents of", path, e))?;
                }
            }
            Err(e) => return Err(SandboxError::from_io("write", path, e)),
        }
        let mut options = fs::OpenOptions::new();
        options
            .write(true)
            .create(true)
            .mode(opts.mode.unwrap_or(DEFAULT_FILE_MODE) & 0o7777)
            .custom_flags(open_flags());
        if opts.append {
            options.append(true);
        } else if opts.truncate {
            options.truncate(true);
        }
        let mut file = options
            .open(&resolved.host)
            .map_err(|e| SandboxError::from_io("write", path, e))?;
        if !opts.append {
            file.seek(SeekFrom::Start(opts.offset))
                .map_err(|e| SandboxError::from_io("write", path, e))?;
        }
        file.write_all(data)
            .map_err(|e| SandboxError::from_io("write", path, e))?;
        Ok(data.len() as u64)
    }

    /// Metadata of `path`, following symlinks (like `stat(2)`).
    pub fn stat(&self, path: &str) -> Result<FileInfo, SandboxError> {
        let resolved = self.resolve(path, Follow::All)?;
        let meta = fs::symlink_metadata(&resolved.host)
            .map_err(|e| SandboxError::from_io("stat", path, e))?;
        let name = resolved
            .parts
            .last()
            .map_or_else(|| "/".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(FileInfo::new(name, resolved.guest_path(), &meta))
    }

    /// The entries of the directory at `path`, sorted by name: dot-files only with
    /// `include_hidden`, at most `max_entries` (0: all). Entries' symlinks are not followed.
    pub fn list(
        &self,
        path: &str,
        include_hidden: bool,
        max_entries: usize,
    ) -> Result<Listing, SandboxError> {
        let resolved = self.resolve(path, Follow::All)?;
        let meta = fs::symlink_metadata(&resolved.host)
            .map_err(|e| SandboxError::from_io("list", path, e))?;
        if !meta.is_dir() {
            return Err(SandboxError::NotADirectory {
                path: path.to_owned(),
            });
        }
        let dir_path = resolved.guest_path();
        let mut entries = Vec::new();
        let reader =
            fs::read_dir(&resolved.host).map_err(|e| SandboxError::from_io("list", path, e))?;
        for entry in reader {
            let entry = entry.map_err(|e| SandboxError::from_io("list", path, e))?;
            let name = entry.file_name();
            if !include_hidden && name.as_bytes().starts_with(b".") {
                continue;
            }
            // An entry removed since read_dir saw it is skipped, not an error.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let mut parts = resolved.parts.clone();
            parts.push(name.clone());
            entries.push(FileInfo::new(
                name.to_string_lossy().into_owned(),
                guest_path_of(&parts),
                &meta,
            ));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let total = entries.len();
        let truncated = max_entries != 0 && total > max_entries;
        if truncated {
            entries.truncate(max_entries);
        }
        Ok(Listing {
            path: dir_path,
            entries,
            total,
            truncated,
        })
    }

    /// Creates the directory `path` (mode `mode`, default [`DEFAULT_DIR_MODE`], umask applies).
    /// With `parents`, missing parents are created and an existing directory is fine (`mkdir
    /// -p`); without, the parent must exist and the path must not.
    pub fn mkdir(&self, path: &str, parents: bool, mode: Option<u32>) -> Result<(), SandboxError> {
        let resolved = self.resolve(path, Follow::All)?;
        let exists = || SandboxError::AlreadyExists {
            path: path.to_owned(),
        };
        match fs::symlink_metadata(&resolved.host) {
            Ok(meta) if meta.is_dir() && parents => return Ok(()),
            Ok(_) => return Err(exists()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::from_io("mkdir", path, e)),
        }
        fs::DirBuilder::new()
            .recursive(parents)
            .mode(mode.unwrap_or(DEFAULT_DIR_MODE) & 0o7777)
            .create(&resolved.host)
            .map_err(|e| SandboxError::from_io("mkdir", path, e))
    }

    /// Removes `path`: a file, a symlink (the link itself, never its target) or a directory
    /// (empty, or with its whole contents when `recursive`; nested symlinks are removed, not
    /// followed). The root cannot be removed.
    pub fn delete(&self, path: &str, recursive: bool) -> Result<(), SandboxError> {
        let resolved = self.resolve(path, Follow::NotLast)?;
        if resolved.is_root() {
            return Err(SandboxError::Root { op: "delete" });
        }
        let meta = fs::symlink_metadata(&resolved.host)
            .map_err(|e| SandboxError::from_io("delete", path, e))?;
        let result = if meta.is_dir() {
            if recursive {
                fs::remove_dir_all(&resolved.host)
            } else {
                fs::remove_dir(&resolved.host)
            }
        } else {
            fs::remove_file(&resolved.host)
        };
        result.map_err(|e| SandboxError::from_io("delete", path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A tempdir holding `root/` (the sandbox) and `outside.txt` next to it.
    struct Fixture {
        dir: tempfile::TempDir,
        sandbox: Sandbox,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("root");
            fs::create_dir(&root).expect("mkdir root");
            fs::create_dir(root.join("sub")).expect("mkdir sub");
            fs::write(root.join("sub/file.txt"), b"inside").expect("write file");
            fs::write(root.join("data.txt"), b"data").expect("write data");
            fs::write(dir.path().join("outside.txt"), b"secret").expect("write outside");
            let sandbox = Sandbox::new(&root).expect("sandbox");
            Self { dir, sandbox }
        }

        fn root(&self) -> PathBuf {
            self.sandbox.root().to_path_buf()
        }

        fn read_all(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
            let mut out = Vec::new();
            for chunk in self.sandbox.read(path, 0, 0, 0)? {
                out.extend(chunk?.data);
            }
            Ok(out)
        }
    }

    fn assert_escape<T: std::fmt::Debug>(result: Result<T, SandboxError>) {
        match result {
            Err(SandboxError::Escape { .. }) => {}
            other => panic!("expected Escape, got {other:?}"),
        }
    }

    #[test]
    fn dotdot_above_the_root_is_rejected() {
        let fx = Fixture::new();
        let s = &fx.sandbox;
        assert_escape(s.read("../outside.txt", 0, 0, 0));
        assert_escape(s.read("../x", 0, 0, 0));
        assert_escape(s.read("/../../etc/passwd", 0, 0, 0));
        assert_escape(s.stat("sub/../../outside.txt"));
        assert_escape(s.write("../x", b"no", &WriteOptions::default()));
        assert_escape(s.write(
            "new/../../x",
            b"no",
            &WriteOptions {
                create_parents: true,
                ..WriteOptions::default()
            },
        ));
        assert_escape(s.mkdir("../newdir", true, None));
        assert_escape(s.delete("../outside.txt", false));
        assert_escape(s.list("..", true, 0));
        assert!(fx.dir.path().join("outside.txt").exists());
        assert!(!fx.dir.path().join("x").exists());
    }

    #[test]
    fn missing_components_then_dotdot_come_back_inside() {
        let fx = Fixture::new();
        assert_eq!(fx.read_all("nope/../data.txt").expect("read"), b"data");
        symlink("/etc", fx.root().join("etc")).expect("symlink");
        // After `nope/..` resolution must look at the disk again, and see the link.
        assert_escape(fx.sandbox.stat("nope/../etc/passwd"));
    }

    #[test]
    fn dotdot_and_absolute_paths_inside_the_root_are_fine() {
        let fx = Fixture::new();
        assert_eq!(fx.read_all("sub/../data.txt").expect("read"), b"data");
        assert_eq!(fx.read_all("/sub/file.txt").expect("read"), b"inside");
        assert_eq!(fx.read_all("//sub/./file.txt").expect("read"), b"inside");
        let info = fx.sandbox.stat("/").expect("stat root");
        assert_eq!((info.kind, info.path.as_str()), (FileKind::Directory, "/"));
    }

    #[test]
    fn symlink_to_etc_is_an_escape() {
        let fx = Fixture::new();
        symlink("/etc", fx.root().join("etc")).expect("symlink");
        assert_escape(fx.sandbox.read("etc/passwd", 0, 0, 0));
        assert_escape(fx.sandbox.stat("etc"));
        assert_escape(fx.sandbox.list("/etc", false, 0));
        assert_escape(fx.sandbox.write("etc/x", b"no", &WriteOptions::default()));
    }

    #[test]
    fn symlink_chain_that_escapes_is_rejected() {
        let fx = Fixture::new();
        let root = fx.root();
        // l1 -> sub/l2 -> ../l3 -> ../outside.txt (one level above the root).
        symlink("sub/l2", root.join("l1")).expect("l1");
        symlink("../l3", root.join("sub/l2")).expect("l2");
        symlink("../outside.txt", root.join("l3")).expect("l3");
        assert_escape(fx.sandbox.read("l1", 0, 0, 0));
        // An absolute target outside the root, reached through a relative link.
        symlink(fx.dir.path().join("outside.txt"), root.join("abs_out")).expect("abs_out");
        symlink("../abs_out", root.join("sub/via")).expect("via");
        assert_escape(fx.sandbox.read("sub/via", 0, 0, 0));
        assert_escape(fx.sandbox.read("abs_out", 0, 0, 0));
        // A directory symlink that leaves, then `..` that would come back in, still escapes.
        symlink(fx.dir.path(), root.join("up")).expect("up");
        assert_escape(fx.sandbox.read("up/root/data.txt", 0, 0, 0));
    }

    #[test]
    fn symlinks_that_stay_inside_are_followed() {
        let fx = Fixture::new();
        let root = fx.root();
        symlink(root.join("sub/file.txt"), root.join("abs_in")).expect("abs_in");
        symlink("../data.txt", root.join("sub/rel")).expect("rel");
        symlink("sub", root.join("subdir_link")).expect("dir link");
        assert_eq!(fx.read_all("abs_in").expect("absolute in-root"), b"inside");
        assert_eq!(fx.read_all("sub/rel").expect("relative"), b"data");
        assert_eq!(fx.read_all("subdir_link/rel").expect("via dir"), b"data");
        let info = fx.sandbox.stat("abs_in").expect("stat");
        assert_eq!(info.path, "/sub/file.txt");
        assert_eq!(info.kind, FileKind::File);
    }

    #[test]
    fn symlink_loop_and_nul_bytes_are_rejected() {
        let fx = Fixture::new();
        symlink("b", fx.root().join("a")).expect("a");
        symlink("a", fx.root().join("b")).expect("b");
        assert!(matches!(
            fx.sandbox.read("a", 0, 0, 0),
            Err(SandboxError::SymlinkLoop { .. })
        ));
        let err = fx.sandbox.stat("data\0.txt").expect_err("NUL");
        assert!(matches!(err, SandboxError::InvalidPath { .. }));
        assert_eq!(err.code(), "invalid_path");
    }

    #[test]
    fn errors_are_typed_and_do_not_leak_the_host_root() {
        let fx = Fixture::new();
        let root = fx.root().display().to_string();
        let cases = [
            fx.sandbox.read("missing.txt", 0, 0, 0).map(|_| ()),
            fx.sandbox.read("sub", 0, 0, 0).map(|_| ()),
            fx.sandbox.list("data.txt", false, 0).map(|_| ()),
            fx.sandbox.read("data.txt/x", 0, 0, 0).map(|_| ()),
            fx.sandbox.mkdir("sub", false, None),
            fx.sandbox.delete("/", true),
        ];
        let codes: Vec<_> = cases
            .iter()
            .map(|r| r.as_ref().expect_err("fails").code())
            .collect();
        assert_eq!(
            codes,
            [
                "not_found",
                "not_a_file",
                "not_a_directory",
                "not_a_directory",
                "already_exists",
                "root"
            ]
        );
        for case in &cases {
            let msg = case.as_ref().expect_err("fails").to_string();
            assert!(!msg.contains(&root), "{msg}");
        }
        assert_eq!(
            cases[0].as_ref().expect_err("fails").to_string(),
            "no such file or directory: missing.txt"
        );
    }

    #[test]
    fn chunked_read_of_a_file_larger_than_the_chunk() {
        let fx = Fixture::new();
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(fx.root().join("big.bin"), &content).expect("write big");
        let read = fx.sandbox.read("big.bin", 0, 0, 4096).expect("open");
        assert_eq!(read.total_size, 10_000);
        let chunks: Vec<ReadChunk> = read.map(|c| c.expect("chunk")).collect();
        let sizes: Vec<_> = chunks.iter().map(|c| c.data.len()).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        assert_eq!(
            chunks.iter().map(|c| c.chunk_number).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            chunks.iter().map(|c| c.offset).collect::<Vec<_>>(),
            [0, 4096, 8192]
        );
        assert_eq!(
            chunks.iter().map(|c| (c.eof, c.last)).collect::<Vec<_>>(),
            [(false, false), (false, false), (true, true)]
        );
        let joined: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
        assert_eq!(joined, content);

        // A range inside the file: last chunk of the read, but not end of file.
        let range: Vec<_> = fx
            .sandbox
            .read("big.bin", 100, 50, 4096)
            .expect("open")
            .map(|c| c.expect("chunk"))
            .collect();
        assert_eq!(range.len(), 1);
        assert_eq!(range[0].data, &content[100..150]);
        assert!(range[0].last && !range[0].eof);

        // Past the end: one empty chunk at eof.
        let past: Vec<_> = fx
            .sandbox
            .read("big.bin", 20_000, 0, 0)
            .expect("open")
            .map(|c| c.expect("chunk"))
            .collect();
        assert_eq!(past.len(), 1);
        assert!(past[0].data.is_empty() && past[0].eof && past[0].last);
    }

    #[test]
    fn write_append_offset_truncate_and_mode() {
        let fx = Fixture::new();
        let s = &fx.sandbox;
        let create = WriteOptions {
            mode: Some(0o600),
            ..WriteOptions::default()
        };
        assert_eq!(s.write("notes.txt", b"abc", &create).expect("create"), 3);
        let append = WriteOptions {
            append: true,
            ..WriteOptions::default()
        };
        s.write("notes.txt", b"def", &append).expect("append");
        assert_eq!(fx.read_all("notes.txt").expect("read"), b"abcdef");
        let at = WriteOptions {
            offset: 1,
            ..WriteOptions::default()
        };
        s.write("notes.txt", b"XY", &at).expect("overwrite");
        assert_eq!(fx.read_all("notes.txt").expect("read"), b"aXYdef");
        let replace = WriteOptions {
            truncate: true,
            ..WriteOptions::default()
        };
        s.write("notes.txt", b"new", &replace).expect("truncate");
        assert_eq!(fx.read_all("notes.txt").expect("read"), b"new");
        assert_eq!(s.stat("notes.txt").expect("stat").mode, 0o600);
        let err = s
            .write("sub", b"x", &WriteOptions::default())
            .expect_err("a directory");
        assert_eq!(err.code(), "not_a_file");
    }

    #[test]
    fn write_with_and_without_create_parents() {
        let fx = Fixture::new();
        let s = &fx.sandbox;
        let err = s
            .write("a/b/c.txt", b"x", &WriteOptions::default())
            .expect_err("no parents");
        assert_eq!(err.code(), "not_found");
        let opts = WriteOptions {
            create_parents: true,
            ..WriteOptions::default()
        };
        s.write("/a/b/c.txt", b"deep", &opts)
            .expect("create parents");
        assert_eq!(fx.read_all("a/b/c.txt").expect("read"), b"deep");
        assert_eq!(s.stat("a/b").expect("stat").kind, FileKind::Directory);
    }

    #[test]
    fn mkdir_list_and_hidden_entries() {
        let fx = Fixture::new();
        let s = &fx.sandbox;
        s.mkdir("x/y/z", true, Some(0o700)).expect("mkdir -p");
        s.mkdir("x/y/z", true, None).expect("mkdir -p again");
        assert_eq!(s.stat("x/y/z").expect("stat").mode, 0o700);
        assert_eq!(
            s.mkdir("p/q", false, None).expect_err("no parent").code(),
            "not_found"
        );
        fs::write(fx.root().join(".hidden"), b"").expect("hidden");
        symlink("/etc", fx.root().join("etc")).expect("symlink");
        let listing = s.list("/", false, 0).expect("list");
        let names: Vec<_> = listing.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["data.txt", "etc", "sub", "x"]);
        assert_eq!(listing.entries[1].kind, FileKind::Symlink); // reported, not followed
        assert_eq!(listing.entries[0].path, "/data.txt");
        let all = s.list("/", true, 2).expect("list");
        assert_eq!(all.total, 5);
        assert!(all.truncated);
        let names: Vec<_> = all.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, [".hidden", "data.txt"]);
    }

    #[test]
    fn delete_files_links_and_trees() {
        let fx = Fixture::new();
        let s = &fx.sandbox;
        let root = fx.root();
        // Deleting a link that points outside removes the link, not the target.
        symlink(fx.dir.path().join("outside.txt"), root.join("out_link")).expect("link");
        s.delete("out_link", false).expect("delete link");
        assert!(fx.dir.path().join("outside.txt").exists());
        assert!(fs::symlink_metadata(root.join("out_link")).is_err());

        let opts = WriteOptions {
            create_parents: true,
            ..WriteOptions::default()
        };
        s.write("tree/a/b.txt", b"1", &opts).expect("write");
        s.write("tree/c.txt", b"2", &opts).expect("write");
        symlink(fx.dir.path(), root.join("tree/a/up")).expect("nested link");
        let err = s.delete("tree", false).expect_err("not empty");
        assert_eq!(err.code(), "io");
        s.delete("tree", true).expect("delete recursive");
        assert_eq!(s.stat("tree").expect_err("gone").code(), "not_found");
        assert!(fx.dir.path().join("outside.txt").exists());
        s.delete("data.txt", false).expect("delete file");
        assert_eq!(
            s.delete("data.txt", false).expect_err("gone").code(),
            "not_found"
        );
    }

    #[tokio::test]
    async fn run_moves_operations_to_the_blocking_pool() {
        let fx = Fixture::new();
        let info = fx
            .sandbox
            .run(|s| s.stat("sub/file.txt"))
            .await
            .expect("stat");
        assert_eq!(info.size, 6);
        let err = fx
            .sandbox
            .run(|s| s.stat("../outside.txt"))
            .await
            .expect_err("escape");
        assert_eq!(err.code(), "escape");
    }

    #[test]
    fn root_must_be_a_directory() {
        let fx = Fixture::new();
        let err = Sandbox::new(fx.root().join("data.txt")).expect_err("a file");
        assert_eq!(err.code(), "not_a_directory");
        let err = Sandbox::new(fx.root().join("nope")).expect_err("missing");
        assert_eq!(err.code(), "not_found");
    }
}
