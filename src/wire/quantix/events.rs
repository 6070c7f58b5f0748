//! The unsolicited events the guest sends: periodic telemetry (every 5 s in the LimiQuantix
//! agent) with its disk and interface parts, the ready announcement written on connect, and the
//! error event. None of them answers a request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::{ErrorSeverity, InterfaceState};
use super::json;

/// Periodic guest statistics (`telemetry`, field 100).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryReport {
    /// CPU use, 0–100.
    #[prost(double, tag = "1")]
    #[serde(with = "json::double")]
    pub cpu_usage_percent: f64,
    /// Physical memory.
    #[prost(uint64, tag = "2")]
    pub memory_total_bytes: u64,
    /// Memory in use.
    #[prost(uint64, tag = "3")]
    pub memory_used_bytes: u64,
    /// Memory available.
    #[prost(uint64, tag = "4")]
    pub memory_available_bytes: u64,
    /// Swap size.
    #[prost(uint64, tag = "5")]
    pub swap_total_bytes: u64,
    /// Swap in use.
    #[prost(uint64, tag = "6")]
    pub swap_used_bytes: u64,
    /// Per mount point.
    #[prost(message, repeated, tag = "7")]
    pub disks: Vec<DiskUsage>,
    /// Network interfaces.
    #[prost(message, repeated, tag = "8")]
    pub interfaces: Vec<InterfaceInfo>,
    /// 1-minute load average.
    #[prost(double, tag = "9")]
    #[serde(with = "json::double")]
    pub load_avg_1: f64,
    /// 5-minute load average.
    #[prost(double, tag = "10")]
    #[serde(with = "json::double")]
    pub load_avg_5: f64,
    /// 15-minute load average.
    #[prost(double, tag = "11")]
    #[serde(with = "json::double")]
    pub load_avg_15: f64,
    /// Number of processes.
    #[prost(uint32, tag = "12")]
    pub process_count: u32,
    /// System uptime in seconds.
    #[prost(uint64, tag = "13")]
    pub uptime_seconds: u64,
    /// Host name.
    #[prost(string, tag = "14")]
    pub hostname: String,
}

/// Use of one mounted filesystem.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskUsage {
    /// Mount point.
    #[prost(string, tag = "1")]
    pub mount_point: String,
    /// Filesystem type.
    #[prost(string, tag = "2")]
    pub filesystem: String,
    /// Device path.
    #[prost(string, tag = "3")]
    pub device: String,
    /// Size.
    #[prost(uint64, tag = "4")]
    pub total_bytes: u64,
    /// Used.
    #[prost(uint64, tag = "5")]
    pub used_bytes: u64,
    /// Available.
    #[prost(uint64, tag = "6")]
    pub available_bytes: u64,
    /// Use in percent.
    #[prost(double, tag = "7")]
    #[serde(with = "json::double")]
    pub usage_percent: f64,
}

/// One network interface.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct InterfaceInfo {
    /// Name, e.g. `eth0`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// MAC address.
    #[prost(string, tag = "2")]
    pub mac_address: String,
    /// IPv4 addresses (CIDR).
    #[prost(string, repeated, tag = "3")]
    pub ipv4_addresses: Vec<String>,
    /// IPv6 addresses (CIDR).
    #[prost(string, repeated, tag = "4")]
    pub ipv6_addresses: Vec<String>,
    /// Link state (an [`InterfaceState`]).
    #[prost(enumeration = "InterfaceState", tag = "5")]
    #[serde(
        serialize_with = "json::enum_ser::<InterfaceState, _>",
        deserialize_with = "json::enum_de::<InterfaceState, _>"
    )]
    pub state: i32,
    /// MTU.
    #[prost(uint32, tag = "6")]
    pub mtu: u32,
    /// Bytes received.
    #[prost(uint64, tag = "7")]
    pub rx_bytes: u64,
    /// Bytes sent.
    #[prost(uint64, tag = "8")]
    pub tx_bytes: u64,
    /// Packets received.
    #[prost(uint64, tag = "9")]
    pub rx_packets: u64,
    /// Packets sent.
    #[prost(uint64, tag = "10")]
    pub tx_packets: u64,
}

/// The agent has started (`agent_ready`, field 101; written on connect).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentReadyEvent {
    /// Agent version.
    #[prost(string, tag = "1")]
    pub version: String,
    /// OS name.
    #[prost(string, tag = "2")]
    pub os_name: String,
    /// OS version.
    #[prost(string, tag = "3")]
    pub os_version: String,
    /// Kernel version.
    #[prost(string, tag = "4")]
    pub kernel_version: String,
    /// CPU architecture.
    #[prost(string, tag = "5")]
    pub architecture: String,
    /// Host name.
    #[prost(string, tag = "6")]
    pub hostname: String,
    /// IP addresses at start.
    #[prost(string, repeated, tag = "7")]
    pub ip_addresses: Vec<String>,
    /// Capabilities of this agent.
    #[prost(string, repeated, tag = "8")]
    pub capabilities: Vec<String>,
}

/// Something went wrong in the agent (`error`, field 102).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorEvent {
    /// How bad (an [`ErrorSeverity`]).
    #[prost(enumeration = "ErrorSeverity", tag = "1")]
    #[serde(
        serialize_with = "json::enum_ser::<ErrorSeverity, _>",
        deserialize_with = "json::enum_de::<ErrorSeverity, _>"
    )]
    pub severity: i32,
    /// Error code.
    #[prost(string, tag = "2")]
    pub code: String,
    /// Human-readable text.
    #[prost(string, tag = "3")]
    pub message: String,
    /// Extra context.
    #[prost(btree_map = "string, string", tag = "4")]
    pub details: BTreeMap<String, String>,
}
