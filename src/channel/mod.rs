//! Pure models of the channels between a host and a guest agent: state machines that take the
//! calls each side makes (connect, write, read, close) and report what the real channel would do,
//! with no IO, no clock and no tokio. Thin adapters (and the mock VMM) drive them; tests drive them
//! directly.
//!
//! - [`serial`]: a QEMU 7.2 virtio-serial port exposed as a host Unix socket
//!   (`-chardev socket,server=on,wait=off`), copying the behaviour measured in `VMLAB.md`.

pub mod serial;

#[cfg(test)]
mod serial_tests;
