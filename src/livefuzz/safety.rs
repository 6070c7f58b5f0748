//! The safety filter: live fuzzing talks to a real agent in a real guest, so no case may ask it
//! to do anything — run a program, write or delete a file, shut down, change the clock, a
//! password or the network. A mutation can turn a harmless request into such a one (one bit
//! turns quantix field 10, `ping`, into field 14, `shutdown`), so every generated case is decoded
//! the way the agent would decode it and refused when it contains such a request; the generator
//! then draws another. Best effort: an agent whose parser is laxer than guestwire's could still
//! read something else into a refused-looking case, so fuzz a throwaway guest.

use bytes::BytesMut;

use super::case::Target;
use super::requests::{FCEXEC_RUNTIME, VOLANT_PLUGIN};
use crate::wire::Direction;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{DecodeOptions, open_decoder_detecting_handshake};

/// quantix request arms that change the guest (everything that is not a query).
pub const QUANTIX_HARMFUL: &[&str] = &[
    "execute",
    "file_write",
    "shutdown",
    "reset_password",
    "configure_network",
    "quiesce",
    "thaw",
    "sync_time",
    "create_directory",
    "file_delete",
    "display_resize",
    "clipboard_update",
    "kill_process",
    "service_control",
    "agent_update",
];

/// Fragments of qemu-ga command names that change the guest or run something (guest-exec,
/// guest-file-*, guest-set-*, guest-shutdown, guest-suspend-*, guest-fsfreeze-*, guest-fstrim,
/// guest-ssh-*, guest-set-user-password).
pub const QGA_HARMFUL: &[&str] = &[
    "guest-exec",
    "file",
    "guest-set",
    "shutdown",
    "suspend",
    "fsfreeze",
    "fstrim",
    "ssh",
    "password",
];

/// fcexec runtimes that run code (the mock's `exec` and what real agents have).
pub const FCEXEC_HARMFUL: &[&str] = &[
    "exec", "python", "python3", "node", "nodejs", "bash", "sh", "ruby", "go", "deno", "bun",
    "perl", "php", "shell",
];

/// Whether `input` (a whole case) is harmless for `target`'s agent.
pub fn is_safe(target: &Target, input: &[u8]) -> bool {
    match &target.protocol {
        Protocol::Qga => {
            // White space cannot be part of a command name: scan without it (a padded case
            // shrinks from megabytes to its object).
            let dense: Vec<u8> = input
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            !QGA_HARMFUL
                .iter()
                .any(|f| memchr::memmem::find(&dense, f.as_bytes()).is_some())
        }
        Protocol::Volant => volant_safe(input),
        protocol => decoded_safe(protocol, input),
    }
}

/// Every `/plugin/` names guestwire's own (absent) plugin.
fn volant_safe(input: &[u8]) -> bool {
    let needle = b"/plugin/";
    let ours = format!("{VOLANT_PLUGIN}/");
    memchr::memmem::find_iter(input, needle)
        .all(|at| input[at + needle.len()..].starts_with(ours.as_bytes()))
}

/// Decodes `input` as the agent would (after any handshake line) and looks at each request.
fn decoded_safe(protocol: &Protocol, input: &[u8]) -> bool {
    let mut decoder = open_decoder_detecting_handshake(
        protocol,
        &DecodeOptions {
            direction: Some(Direction::ToGuest),
            ..DecodeOptions::default()
        },
    );
    let mut buf = BytesMut::from(input);
    // Each step consumes input or ends; the bound is a guard against a decoder that would not.
    for _ in 0..input.len() + 16 {
        let Some(item) = decoder
            .decode(&mut buf)
            .or_else(|| decoder.decode_eof(&mut buf))
        else {
            return true;
        };
        let Ok(frame) = item else { continue };
        let harmful = match protocol {
            Protocol::Quantix | Protocol::QuantixLegacy => {
                QUANTIX_HARMFUL.contains(&frame.type_name.as_str())
            }
            Protocol::Fcexec => frame
                .message
                .get("runtime")
                .and_then(|r| r.as_str())
                .is_some_and(|r| r != FCEXEC_RUNTIME && FCEXEC_HARMFUL.contains(&r)),
            _ => false,
        };
        if harmful {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::livefuzz::requests::{encode, templates};
    use serde_json::json;

    fn target(protocol: Protocol) -> Target {
        Target {
            protocol,
            hvsock_port: None,
        }
    }

    #[test]
    fn the_templates_are_safe_and_harmful_requests_are_not() {
        for p in [
            Protocol::Quantix,
            Protocol::QuantixLegacy,
            Protocol::Fcexec,
            Protocol::Qga,
            Protocol::Volant,
        ] {
            for t in templates(&p, 3) {
                let bytes = encode(&p, &t.json).expect("encode");
                assert!(is_safe(&target(p.clone()), &bytes), "{p} {}", t.name);
            }
        }
        let shutdown = encode(
            &Protocol::Quantix,
            &json!({"message_id": "1", "shutdown": {}}),
        )
        .expect("encode");
        assert!(!is_safe(&target(Protocol::Quantix), &shutdown));
        // One bit: ping (field 10, key 0x52) becomes shutdown (field 14, key 0x72).
        let mut ping = encode(
            &Protocol::Quantix,
            &json!({"message_id": "1", "ping": {"sequence": 1}}),
        )
        .expect("encode")
        .to_vec();
        let key = ping.iter().rposition(|b| *b == 0x52).expect("ping key");
        ping[key] ^= 0x20;
        assert!(!is_safe(&target(Protocol::Quantix), &ping));
        let exec = encode(
            &Protocol::Fcexec,
            &json!({"runtime": "exec", "entrypoint": "rm"}),
        )
        .expect("encode");
        assert!(!is_safe(&target(Protocol::Fcexec), &exec));
        assert!(!is_safe(
            &target(Protocol::Qga),
            b"{\"execute\":\"guest-shutdown\"}\n"
        ));
        assert!(!is_safe(
            &target(Protocol::Volant),
            b"POST /v1/plugin/other/actions/x HTTP/1.1\r\n\r\n"
        ));
    }
}
