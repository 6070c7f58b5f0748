//! The mock VMM: what stands where QEMU, Firecracker or Cloud Hypervisor stand, so that host
//! clients and guest agents can be tested (and broken on purpose) without a VM. Thin async
//! adapters that drive the pure channel models of [`crate::channel`] over real sockets, with the
//! faults of [`crate::fault`] applied by [`crate::io::fault_pump`].
//!
//! - [`serial`]: a QEMU virtio-serial port behind a host Unix socket (`guestwire vmm serial`);
//! - [`hvsock`]: a hybrid-vsock muxer (`guestwire vmm hvsock`);
//! - [`chapi`]: the Cloud Hypervisor REST API (`guestwire vmm ch-api`), and [`chapi_vsock`],
//!   which gives a booted VM with a `vsock` config its hybrid-vsock socket and mock guest.

pub mod chapi;
pub mod chapi_vsock;
pub mod hvsock;
pub mod serial;
