//! Pure models of the channels between a host and a guest agent: state machines that take the
//! calls each side makes (connect, write, read, close) and `now`, and report what the real channel
//! would do — events and deadlines — with no IO, no clock and no tokio. Thin adapters (and the
//! mock VMM) drive them; tests drive them directly.
//!
//! - [`serial`]: a QEMU 7.2 virtio-serial port exposed as a host Unix socket
//!   (`-chardev socket,server=on,wait=off`), copying the behaviour measured in `VMLAB.md`.
//! - [`vsock`]: a hybrid-vsock muxer (Firecracker, Cloud Hypervisor, vhost-device-vsock): the
//!   `CONNECT`/`OK` handshake per flavour, the port table, limits and timeouts.

pub mod serial;
pub mod vsock;

#[cfg(test)]
mod serial_tests;
