//! System inventory: the hardware description and its parts (CPU, memory, disks and partitions,
//! network adapters, BIOS, OS, GPUs) and the installed-software list (`agent.proto` fields and
//! numbers).

use serde::{Deserialize, Serialize};

use super::json;
use super::timestamp::Timestamp;

/// Ask for the hardware description (`get_hardware_info`, field 31).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct GetHardwareInfoRequest {
    /// Include CPU details.
    #[prost(bool, tag = "1")]
    pub include_cpu_details: bool,
    /// Include disk details.
    #[prost(bool, tag = "2")]
    pub include_disk_details: bool,
    /// Include network details.
    #[prost(bool, tag = "3")]
    pub include_network_details: bool,
}

/// The hardware description (`hardware_info_response`, field 71).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct GetHardwareInfoResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The hardware (boxed: it is by far the largest message, and would otherwise size every
    /// `Payload`).
    #[prost(message, optional, boxed, tag = "2")]
    pub hardware: Option<Box<HardwareInfo>>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
}

/// What the guest runs on.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct HardwareInfo {
    /// CPU.
    #[prost(message, optional, tag = "1")]
    pub cpu: Option<CpuInfo>,
    /// Memory.
    #[prost(message, optional, tag = "2")]
    pub memory: Option<MemoryInfo>,
    /// Disks.
    #[prost(message, repeated, tag = "3")]
    pub disks: Vec<DiskInfo>,
    /// Network adapters.
    #[prost(message, repeated, tag = "4")]
    pub network_adapters: Vec<NetworkAdapterInfo>,
    /// BIOS.
    #[prost(message, optional, tag = "5")]
    pub bios: Option<BiosInfo>,
    /// Operating system.
    #[prost(message, optional, tag = "6")]
    pub os: Option<OsInfo>,
    /// GPUs.
    #[prost(message, repeated, tag = "7")]
    pub gpus: Vec<GpuInfo>,
}

/// The CPU.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuInfo {
    /// Model name.
    #[prost(string, tag = "1")]
    pub model: String,
    /// Physical cores.
    #[prost(uint32, tag = "2")]
    pub cores: u32,
    /// Logical threads.
    #[prost(uint32, tag = "3")]
    pub threads: u32,
    /// Base frequency in MHz.
    #[prost(double, tag = "4")]
    #[serde(with = "json::double")]
    pub frequency_mhz: f64,
    /// Architecture.
    #[prost(string, tag = "5")]
    pub architecture: String,
    /// Feature flags.
    #[prost(string, repeated, tag = "6")]
    pub flags: Vec<String>,
    /// Vendor.
    #[prost(string, tag = "7")]
    pub vendor: String,
    /// Sockets.
    #[prost(uint32, tag = "8")]
    pub sockets: u32,
    /// L1 cache size.
    #[prost(uint64, tag = "9")]
    pub l1_cache_bytes: u64,
    /// L2 cache size.
    #[prost(uint64, tag = "10")]
    pub l2_cache_bytes: u64,
    /// L3 cache size.
    #[prost(uint64, tag = "11")]
    pub l3_cache_bytes: u64,
}

/// Physical memory.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryInfo {
    /// Total.
    #[prost(uint64, tag = "1")]
    pub total_bytes: u64,
    /// Available.
    #[prost(uint64, tag = "2")]
    pub available_bytes: u64,
    /// Type (DDR4, …).
    #[prost(string, tag = "3")]
    pub memory_type: String,
    /// Speed in MHz.
    #[prost(uint32, tag = "4")]
    pub speed_mhz: u32,
    /// Number of DIMMs.
    #[prost(uint32, tag = "5")]
    pub dimm_count: u32,
}

/// One disk.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskInfo {
    /// Device path.
    #[prost(string, tag = "1")]
    pub device: String,
    /// Model.
    #[prost(string, tag = "2")]
    pub model: String,
    /// Serial number.
    #[prost(string, tag = "3")]
    pub serial: String,
    /// Size.
    #[prost(uint64, tag = "4")]
    pub size_bytes: u64,
    /// HDD, SSD, NVMe.
    #[prost(string, tag = "5")]
    pub disk_type: String,
    /// SATA, NVMe, USB.
    #[prost(string, tag = "6")]
    pub interface: String,
    /// A virtual disk.
    #[prost(bool, tag = "7")]
    pub is_virtual: bool,
    /// Partitions.
    #[prost(message, repeated, tag = "8")]
    pub partitions: Vec<PartitionInfo>,
}

/// One partition.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct PartitionInfo {
    /// Device path.
    #[prost(string, tag = "1")]
    pub device: String,
    /// Mount point, if mounted.
    #[prost(string, tag = "2")]
    pub mount_point: String,
    /// Filesystem type.
    #[prost(string, tag = "3")]
    pub filesystem: String,
    /// Size.
    #[prost(uint64, tag = "4")]
    pub size_bytes: u64,
    /// Used.
    #[prost(uint64, tag = "5")]
    pub used_bytes: u64,
    /// Label.
    #[prost(string, tag = "6")]
    pub label: String,
}

/// One network adapter.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkAdapterInfo {
    /// Interface name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// MAC address.
    #[prost(string, tag = "2")]
    pub mac_address: String,
    /// Ethernet, wifi, virtual.
    #[prost(string, tag = "3")]
    pub adapter_type: String,
    /// Link speed in Mbit/s.
    #[prost(uint32, tag = "4")]
    pub speed_mbps: u32,
    /// A virtual adapter.
    #[prost(bool, tag = "5")]
    pub is_virtual: bool,
    /// Driver.
    #[prost(string, tag = "6")]
    pub driver: String,
    /// PCI address.
    #[prost(string, tag = "7")]
    pub pci_address: String,
}

/// Firmware and system identity.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct BiosInfo {
    /// BIOS vendor.
    #[prost(string, tag = "1")]
    pub vendor: String,
    /// BIOS version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// BIOS release date.
    #[prost(string, tag = "3")]
    pub release_date: String,
    /// System manufacturer.
    #[prost(string, tag = "4")]
    pub system_manufacturer: String,
    /// System product name.
    #[prost(string, tag = "5")]
    pub system_product: String,
    /// System serial number.
    #[prost(string, tag = "6")]
    pub system_serial: String,
    /// System UUID.
    #[prost(string, tag = "7")]
    pub system_uuid: String,
}

/// The operating system.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct OsInfo {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Build.
    #[prost(string, tag = "3")]
    pub build: String,
    /// Kernel.
    #[prost(string, tag = "4")]
    pub kernel: String,
    /// Architecture.
    #[prost(string, tag = "5")]
    pub architecture: String,
    /// Installation date.
    #[prost(message, optional, tag = "6")]
    pub install_date: Option<Timestamp>,
    /// Last boot.
    #[prost(message, optional, tag = "7")]
    pub last_boot: Option<Timestamp>,
    /// Host name.
    #[prost(string, tag = "8")]
    pub hostname: String,
    /// Domain, if joined.
    #[prost(string, tag = "9")]
    pub domain: String,
}

/// One GPU.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuInfo {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Vendor.
    #[prost(string, tag = "2")]
    pub vendor: String,
    /// Driver version.
    #[prost(string, tag = "3")]
    pub driver_version: String,
    /// Video memory.
    #[prost(uint64, tag = "4")]
    pub vram_bytes: u64,
    /// PCI address.
    #[prost(string, tag = "5")]
    pub pci_address: String,
}

/// List installed software (`list_installed_software`, field 32).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListInstalledSoftwareRequest {
    /// Name filter (empty: all).
    #[prost(string, tag = "1")]
    pub filter: String,
    /// Maximum entries (0: unlimited).
    #[prost(uint32, tag = "2")]
    pub max_entries: u32,
}

/// The installed software (`list_installed_software_response`, field 72).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListInstalledSoftwareResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The packages.
    #[prost(message, repeated, tag = "2")]
    pub software: Vec<InstalledSoftware>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
    /// Count in all, if known.
    #[prost(uint32, tag = "4")]
    pub total_count: u32,
}

/// One installed package.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct InstalledSoftware {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Publisher.
    #[prost(string, tag = "3")]
    pub publisher: String,
    /// Installation date.
    #[prost(message, optional, tag = "4")]
    pub install_date: Option<Timestamp>,
    /// Installed size.
    #[prost(uint64, tag = "5")]
    pub size_bytes: u64,
    /// Package type (deb, rpm, msi, …).
    #[prost(string, tag = "6")]
    pub package_type: String,
    /// Architecture.
    #[prost(string, tag = "7")]
    pub architecture: String,
}
