//! The one parser for socat-style endpoint addresses, used by every subcommand that connects or
//! listens: `unix:/path`, `hvsock:/path:PORT` (hybrid vsock, as Firecracker and Cloud Hypervisor
//! expose it), `vsock:CID:PORT` (kernel AF_VSOCK), `tcp:HOST:PORT`, `pty:/path` (a pseudo-terminal
//! standing in for `/dev/virtio-ports/<name>`), `serial:/dev/virtio-ports/<name>` (the guest end of
//! a real virtio-serial port, inside a VM) and `stdio`. A bare path starting with `/`, `./` or
//! `../` means `unix:`, and `-` means `stdio`, as in socat.
//!
//! [`Endpoint`] implements `FromStr` and `Display`, and `display → parse` gives the same value back.
//! A bad address is a typed [`EndpointError`] whose message says which form was expected.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// AF_VSOCK CID of the hypervisor's host (`host`), as in `<linux/vm_sockets.h>`.
pub const VSOCK_CID_HOST: u32 = 2;
/// AF_VSOCK CID for loopback inside one machine (`local`).
pub const VSOCK_CID_LOCAL: u32 = 1;
/// AF_VSOCK wildcard CID (`any`), `VMADDR_CID_ANY`.
pub const VSOCK_CID_ANY: u32 = u32::MAX;

/// Longest Unix socket path Linux accepts: `sun_path` is 108 bytes including the final NUL.
pub const UNIX_PATH_MAX: usize = 107;

/// The forms every error message lists.
const FORMS: &str = "unix:/path, hvsock:/path:PORT, vsock:CID:PORT, tcp:HOST:PORT, pty:/path, serial:/dev/virtio-ports/NAME, stdio, or a path starting with / or ./";

/// Where to connect or listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix stream socket (e.g. QEMU's virtio-serial chardev socket).
    Unix(PathBuf),
    /// Hybrid vsock: a Unix socket on which `CONNECT <port>\n` selects the guest port.
    Hvsock {
        /// The VMM's Unix socket (`uds_path`).
        path: PathBuf,
        /// The guest vsock port to ask for.
        port: u32,
    },
    /// Kernel AF_VSOCK.
    Vsock {
        /// Context id: 1 local, 2 host, ≥ 3 a guest, `u32::MAX` any.
        cid: u32,
        /// Port.
        port: u32,
    },
    /// TCP.
    Tcp {
        /// Host name or IP address, IPv6 without its brackets.
        host: String,
        /// Port.
        port: u16,
    },
    /// A pseudo-terminal whose slave end is (to be) linked at this path.
    Pty(PathBuf),
    /// The guest end of a virtio-serial port: a character device such as
    /// `/dev/virtio-ports/<name>`, opened by the agent inside the VM.
    SerialPort(PathBuf),
    /// Standard input and output as one duplex stream.
    Stdio,
}

/// Why an endpoint address does not parse. Every message names the form that was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The address is empty.
    #[error("empty endpoint address: expected one of {FORMS}")]
    Empty,
    /// The address has no known scheme and is not a path.
    #[error("unknown endpoint {input:?}: expected one of {FORMS}")]
    UnknownScheme {
        /// The address as given.
        input: String,
    },
    /// A scheme that needs a path has none.
    #[error("endpoint {input:?} has no path: expected {expected}")]
    MissingPath {
        /// The address as given.
        input: String,
        /// The form that was expected, e.g. `unix:/path`.
        expected: &'static str,
    },
    /// A path contains a NUL byte, which no file name can.
    #[error("endpoint {input:?}: the path contains a NUL byte")]
    NulInPath {
        /// The address as given.
        input: String,
    },
    /// A Unix socket path longer than the kernel accepts.
    #[error(
        "endpoint {input:?}: the socket path is {len} bytes, more than the {max} a Unix socket address can hold; use a shorter (e.g. relative) path"
    )]
    PathTooLong {
        /// The address as given.
        input: String,
        /// The path's length in bytes.
        len: usize,
        /// The limit ([`UNIX_PATH_MAX`]).
        max: usize,
    },
    /// The port field is missing.
    #[error("endpoint {input:?} has no port: expected {expected}")]
    MissingPort {
        /// The address as given.
        input: String,
        /// The form that was expected, e.g. `hvsock:/path:PORT`.
        expected: &'static str,
    },
    /// The port field is not a number in range.
    #[error("endpoint {input:?}: bad port {port:?}, expected a number from 0 to {max}")]
    BadPort {
        /// The address as given.
        input: String,
        /// The port field as given.
        port: String,
        /// The largest valid port.
        max: u32,
    },
    /// The CID field is neither a number nor a known name.
    #[error(
        "endpoint {input:?}: bad vsock CID {cid:?}, expected a number or host (2), local (1) or any; e.g. vsock:3:1024"
    )]
    BadCid {
        /// The address as given.
        input: String,
        /// The CID field as given.
        cid: String,
    },
    /// The TCP host is missing or malformed.
    #[error(
        "endpoint {input:?}: bad host {host:?}: {reason}; expected tcp:HOST:PORT, e.g. tcp:127.0.0.1:8080 or tcp:[::1]:8080"
    )]
    BadHost {
        /// The address as given.
        input: String,
        /// The host field as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something follows `stdio`.
    #[error("endpoint {input:?}: stdio takes no arguments")]
    StdioArguments {
        /// The address as given.
        input: String,
    },
}

impl EndpointError {
    /// The error's kind as a stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::UnknownScheme { .. } => "unknown_scheme",
            Self::MissingPath { .. } => "missing_path",
            Self::NulInPath { .. } => "nul_in_path",
            Self::PathTooLong { .. } => "path_too_long",
            Self::MissingPort { .. } => "missing_port",
            Self::BadPort { .. } => "bad_port",
            Self::BadCid { .. } => "bad_cid",
            Self::BadHost { .. } => "bad_host",
            Self::StdioArguments { .. } => "stdio_arguments",
        }
    }
}

impl Endpoint {
    /// The scheme name: `unix`, `hvsock`, `vsock`, `tcp`, `pty`, `serial` or `stdio`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Unix(_) => "unix",
            Self::Hvsock { .. } => "hvsock",
            Self::Vsock { .. } => "vsock",
            Self::Tcp { .. } => "tcp",
            Self::Pty(_) => "pty",
            Self::SerialPort(_) => "serial",
            Self::Stdio => "stdio",
        }
    }

    /// The filesystem path involved, for `unix:`, `hvsock:`, `pty:` and `serial:`.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Unix(p) | Self::Pty(p) | Self::SerialPort(p) | Self::Hvsock { path: p, .. } => {
                Some(p)
            }
            _ => None,
        }
    }
}

fn parse_path(input: &str, rest: &str, expected: &'static str) -> Result<PathBuf, EndpointError> {
    if rest.is_empty() {
        return Err(EndpointError::MissingPath {
            input: input.into(),
            expected,
        });
    }
    if rest.contains('\0') {
        return Err(EndpointError::NulInPath {
            input: input.into(),
        });
    }
    Ok(PathBuf::from(rest))
}

fn parse_socket_path(
    input: &str,
    rest: &str,
    expected: &'static str,
) -> Result<PathBuf, EndpointError> {
    let path = parse_path(input, rest, expected)?;
    if rest.len() > UNIX_PATH_MAX {
        return Err(EndpointError::PathTooLong {
            input: input.into(),
            len: rest.len(),
            max: UNIX_PATH_MAX,
        });
    }
    Ok(path)
}

fn parse_port<T: FromStr + Into<u32>>(input: &str, port: &str, max: T) -> Result<T, EndpointError> {
    // Digits only: `+5` and ` 5` parse as integers in Rust but are not ports a user meant.
    if !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && let Ok(p) = port.parse::<T>()
    {
        return Ok(p);
    }
    Err(EndpointError::BadPort {
        input: input.into(),
        port: port.into(),
        max: max.into(),
    })
}

fn parse_cid(input: &str, cid: &str) -> Result<u32, EndpointError> {
    match cid.to_ascii_lowercase().as_str() {
        "host" => return Ok(VSOCK_CID_HOST),
        "local" => return Ok(VSOCK_CID_LOCAL),
        "any" => return Ok(VSOCK_CID_ANY),
        _ => {}
    }
    if !cid.is_empty()
        && cid.bytes().all(|b| b.is_ascii_digit())
        && let Ok(c) = cid.parse::<u32>()
    {
        return Ok(c);
    }
    Err(EndpointError::BadCid {
        input: input.into(),
        cid: cid.into(),
    })
}

fn parse_tcp(input: &str, rest: &str) -> Result<Endpoint, EndpointError> {
    const EXPECTED: &str = "tcp:HOST:PORT";
    let bad_host = |host: &str, reason| EndpointError::BadHost {
        input: input.into(),
        host: host.into(),
        reason,
    };
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (inside, tail) = after
            .split_once(']')
            .ok_or_else(|| bad_host(rest, "an IPv6 address in [ has no closing ]"))?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(bad_host(inside, "not an IPv6 address"));
        }
        let port = match tail.strip_prefix(':') {
            Some(p) => p,
            None if tail.is_empty() => {
                return Err(EndpointError::MissingPort {
                    input: input.into(),
                    expected: EXPECTED,
                });
            }
            None => return Err(bad_host(rest, "expected : and a port after ]")),
        };
        (inside, port)
    } else {
        let Some((host, port)) = rest.split_once(':') else {
            return Err(EndpointError::MissingPort {
                input: input.into(),
                expected: EXPECTED,
            });
        };
        if port.contains(':') {
            return Err(bad_host(
                rest,
                "an IPv6 address must be written in brackets",
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad_host(host, "the host is empty"));
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
    {
        return Err(bad_host(
            host,
            "a host name cannot contain spaces, / or control characters",
        ));
    }
    if port.is_empty() {
        return Err(EndpointError::MissingPort {
            input: input.into(),
            expected: EXPECTED,
        });
    }
    Ok(Endpoint::Tcp {
        host: host.to_string(),
        port: parse_port(input, port, u16::MAX)?,
    })
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(EndpointError::Empty);
        }
        if input.starts_with('/') || input.starts_with("./") || input.starts_with("../") {
            return Ok(Self::Unix(parse_socket_path(input, input, "unix:/path")?));
        }
        if input == "-" {
            return Ok(Self::Stdio);
        }
        let (scheme, rest) = match input.split_once(':') {
            Some((s, r)) => (s, Some(r)),
            None => (input, None),
        };
        match (scheme.to_ascii_lowercase().as_str(), rest) {
            ("stdio", None) => Ok(Self::Stdio),
            ("stdio", Some(_)) => Err(EndpointError::StdioArguments {
                input: input.into(),
            }),
            ("unix", rest) => Ok(Self::Unix(parse_socket_path(
                input,
                rest.unwrap_or(""),
                "unix:/path",
            )?)),
            ("pty", rest) => Ok(Self::Pty(parse_path(
                input,
                rest.unwrap_or(""),
                "pty:/path",
            )?)),
            ("serial", rest) => Ok(Self::SerialPort(parse_path(
                input,
                rest.unwrap_or(""),
                "serial:/dev/virtio-ports/NAME",
            )?)),
            ("hvsock", rest) => {
                const EXPECTED: &str = "hvsock:/path:PORT";
                let rest = rest.unwrap_or("");
                let Some((path, port)) = rest.rsplit_once(':') else {
                    // One field: a path with no port, or nothing at all.
                    parse_path(input, rest, EXPECTED)?;
                    return Err(EndpointError::MissingPort {
                        input: input.into(),
                        expected: EXPECTED,
                    });
                };
                let path = parse_socket_path(input, path, EXPECTED)?;
                if port.is_empty() {
                    return Err(EndpointError::MissingPort {
                        input: input.into(),
                        expected: EXPECTED,
                    });
                }
                let port = parse_port(input, port, u32::MAX)?;
                Ok(Self::Hvsock { path, port })
            }
            ("vsock", rest) => {
                const EXPECTED: &str = "vsock:CID:PORT";
                let rest = rest.unwrap_or("");
                let Some((cid, port)) = rest.split_once(':') else {
                    return Err(EndpointError::MissingPort {
                        input: input.into(),
                        expected: EXPECTED,
                    });
                };
                let cid = parse_cid(input, cid)?;
                if port.is_empty() {
                    return Err(EndpointError::MissingPort {
                        input: input.into(),
                        expected: EXPECTED,
                    });
                }
                let port = parse_port(input, port, u32::MAX)?;
                Ok(Self::Vsock { cid, port })
            }
            ("tcp", rest) => parse_tcp(input, rest.unwrap_or("")),
            _ => Err(EndpointError::UnknownScheme {
                input: input.into(),
            }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Hvsock { path, port } => write!(f, "hvsock:{}:{port}", path.display()),
            Self::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Self::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Self::Pty(p) => write!(f, "pty:{}", p.display()),
            Self::SerialPort(p) => write!(f, "serial:{}", p.display()),
            Self::Stdio => f.write_str("stdio"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Endpoint {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> EndpointError {
        match s.parse::<Endpoint>() {
            Ok(ep) => panic!("{s:?} parsed as {ep:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            parse("unix:/run/a.sock"),
            Endpoint::Unix("/run/a.sock".into())
        );
        assert_eq!(parse("unix:rel.sock"), Endpoint::Unix("rel.sock".into()));
        assert_eq!(parse("UNIX:/x"), Endpoint::Unix("/x".into()));
        assert_eq!(
            parse("hvsock:/run/v.sock:1024"),
            Endpoint::Hvsock {
                path: "/run/v.sock".into(),
                port: 1024
            }
        );
        assert_eq!(
            parse("vsock:3:8080"),
            Endpoint::Vsock { cid: 3, port: 8080 }
        );
        assert_eq!(
            parse("tcp:127.0.0.1:80"),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 80
            }
        );
        assert_eq!(
            parse("tcp:localhost:0"),
            Endpoint::Tcp {
                host: "localhost".into(),
                port: 0
            }
        );
        assert_eq!(
            parse("tcp:[::1]:65535"),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 65535
            }
        );
        assert_eq!(
            parse("pty:/dev/virtio-ports/org.quantix.agent.0"),
            Endpoint::Pty("/dev/virtio-ports/org.quantix.agent.0".into())
        );
        assert_eq!(
            parse("serial:/dev/virtio-ports/org.quantix.agent.0"),
            Endpoint::SerialPort("/dev/virtio-ports/org.quantix.agent.0".into())
        );
        assert_eq!(err("serial:").kind(), "missing_path");
        assert_eq!(parse("stdio"), Endpoint::Stdio);
        assert_eq!(parse("-"), Endpoint::Stdio);
    }

    #[test]
    fn bare_paths_are_unix() {
        assert_eq!(parse("/tmp/x.sock"), Endpoint::Unix("/tmp/x.sock".into()));
        assert_eq!(parse("./x.sock"), Endpoint::Unix("./x.sock".into()));
        assert_eq!(parse("../x.sock"), Endpoint::Unix("../x.sock".into()));
        // A bare path may contain colons; it is still one path.
        assert_eq!(parse("/tmp/a:b:1"), Endpoint::Unix("/tmp/a:b:1".into()));
    }

    #[test]
    fn hvsock_port_is_the_last_field() {
        assert_eq!(
            parse("hvsock:/run/vm:1/v.sock:52"),
            Endpoint::Hvsock {
                path: "/run/vm:1/v.sock".into(),
                port: 52
            }
        );
        assert_eq!(
            parse("hvsock:/a::7"),
            Endpoint::Hvsock {
                path: "/a:".into(),
                port: 7
            }
        );
    }

    #[test]
    fn vsock_cid_names() {
        assert_eq!(
            parse("vsock:host:9443"),
            Endpoint::Vsock { cid: 2, port: 9443 }
        );
        assert_eq!(parse("vsock:LOCAL:1"), Endpoint::Vsock { cid: 1, port: 1 });
        assert_eq!(
            parse("vsock:any:1024"),
            Endpoint::Vsock {
                cid: u32::MAX,
                port: 1024
            }
        );
        assert_eq!(
            parse("vsock:4294967295:4294967295"),
            Endpoint::Vsock {
                cid: u32::MAX,
                port: u32::MAX
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "unix:/run/a.sock",
            "unix:rel.sock",
            "/bare/path",
            "./x",
            "hvsock:/run/vm:1/v.sock:52",
            "hvsock:/a::7",
            "vsock:3:8080",
            "vsock:host:1",
            "vsock:any:0",
            "tcp:127.0.0.1:80",
            "tcp:[::1]:8080",
            "tcp:[fe80::1]:1",
            "tcp:example.org:443",
            "pty:/tmp/port",
            "pty:/tmp/a:b",
            "serial:/dev/virtio-ports/org.qemu.guest_agent.0",
            "stdio",
            "-",
        ] {
            let ep = parse(s);
            let shown = ep.to_string();
            assert_eq!(parse(&shown), ep, "{s:?} shown as {shown:?}");
        }
        assert_eq!(parse("/bare").to_string(), "unix:/bare");
        assert_eq!(parse("vsock:host:1").to_string(), "vsock:2:1");
        assert_eq!(parse("tcp:[::1]:8").to_string(), "tcp:[::1]:8");
        assert_eq!(parse("-").to_string(), "stdio");
    }

    #[test]
    fn every_error_is_typed_and_says_what_was_expected() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "empty", "unix:/path"),
            ("foo", "unknown_scheme", "tcp:HOST:PORT"),
            ("http://x", "unknown_scheme", "vsock:CID:PORT"),
            ("x.sock", "unknown_scheme", "a path starting with /"),
            ("unix:", "missing_path", "unix:/path"),
            ("unix", "missing_path", "unix:/path"),
            ("pty:", "missing_path", "pty:/path"),
            ("hvsock:", "missing_path", "hvsock:/path:PORT"),
            ("hvsock::5", "missing_path", "hvsock:/path:PORT"),
            ("hvsock:/p", "missing_port", "hvsock:/path:PORT"),
            ("hvsock:/p:", "missing_port", "hvsock:/path:PORT"),
            ("hvsock:/p:x", "bad_port", "0 to 4294967295"),
            ("hvsock:/p:4294967296", "bad_port", "0 to 4294967295"),
            ("unix:/a\0b", "nul_in_path", "NUL"),
            ("vsock:3", "missing_port", "vsock:CID:PORT"),
            ("vsock:3:", "missing_port", "vsock:CID:PORT"),
            ("vsock:guest:1", "bad_cid", "host (2)"),
            ("vsock::1", "bad_cid", "host (2)"),
            ("vsock:-1:1", "bad_cid", "host (2)"),
            ("vsock:3:+1", "bad_port", "0 to 4294967295"),
            ("vsock:3:1:2", "bad_port", "0 to 4294967295"),
            ("tcp:", "missing_port", "tcp:HOST:PORT"),
            ("tcp:host", "missing_port", "tcp:HOST:PORT"),
            ("tcp:host:", "missing_port", "tcp:HOST:PORT"),
            ("tcp::80", "bad_host", "the host is empty"),
            ("tcp:::1:80", "bad_host", "brackets"),
            ("tcp:[::1:80", "bad_host", "closing ]"),
            ("tcp:[nope]:80", "bad_host", "not an IPv6"),
            ("tcp:[::1]", "missing_port", "tcp:HOST:PORT"),
            ("tcp:[::1]x80", "bad_host", "after ]"),
            ("tcp:a b:80", "bad_host", "spaces"),
            ("tcp:h:65536", "bad_port", "0 to 65535"),
            ("tcp:h:http", "bad_port", "0 to 65535"),
            ("stdio:x", "stdio_arguments", "no arguments"),
        ];
        for (input, kind, says) in cases {
            let e = err(input);
            assert_eq!(e.kind(), *kind, "{input:?}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains(says),
                "{input:?}: {msg:?} should mention {says:?}"
            );
        }
        let long = format!("unix:/{}", "a".repeat(UNIX_PATH_MAX));
        let e = err(&long);
        assert!(
            matches!(
                e,
                EndpointError::PathTooLong {
                    len: 108,
                    max: 107,
                    ..
                }
            ),
            "{e:?}"
        );
        let long_bare = format!("/{}", "a".repeat(UNIX_PATH_MAX));
        assert_eq!(err(&long_bare).kind(), "path_too_long");
        // A pty link is a symlink, not a socket address: no length limit of its own.
        assert!(
            format!("pty:/{}", "a".repeat(200))
                .parse::<Endpoint>()
                .is_ok()
        );
    }

    #[test]
    fn accessors() {
        assert_eq!(parse("hvsock:/p:1").path(), Some(Path::new("/p")));
        assert_eq!(parse("tcp:h:1").path(), None);
        assert_eq!(parse("pty:/t").scheme(), "pty");
    }
}
