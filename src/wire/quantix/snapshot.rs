//! Snapshot support: filesystem quiesce (fsfreeze / VSS) and thaw, and the clock resync a host
//! sends after resuming a suspended guest (`agent.proto` fields and numbers).

use serde::{Deserialize, Serialize};

use super::json;
use super::timestamp::Timestamp;

/// Freeze filesystems before a snapshot (`quiesce`, field 17).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct QuiesceFilesystemsRequest {
    /// Mount points to freeze (empty: every writable one).
    #[prost(string, repeated, tag = "1")]
    pub mount_points: Vec<String>,
    /// Auto-thaw after this many seconds.
    #[prost(uint32, tag = "2")]
    pub timeout_seconds: u32,
    /// Run the pre-freeze hooks.
    #[prost(bool, tag = "3")]
    pub run_pre_freeze_scripts: bool,
    /// Where the pre-freeze hooks are.
    #[prost(string, tag = "4")]
    pub pre_freeze_script_dir: String,
}

/// Result of a quiesce (`quiesce_response`, field 57).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct QuiesceFilesystemsResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// What was frozen.
    #[prost(message, repeated, tag = "2")]
    pub frozen: Vec<FrozenFilesystem>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
    /// Token to pass to the thaw.
    #[prost(string, tag = "4")]
    pub quiesce_token: String,
    /// When the agent will thaw on its own.
    #[prost(message, optional, tag = "5")]
    pub auto_thaw_at: Option<Timestamp>,
}

/// One filesystem a quiesce tried to freeze.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FrozenFilesystem {
    /// Mount point.
    #[prost(string, tag = "1")]
    pub mount_point: String,
    /// Device path.
    #[prost(string, tag = "2")]
    pub device: String,
    /// Filesystem type.
    #[prost(string, tag = "3")]
    pub filesystem: String,
    /// Whether it was frozen.
    #[prost(bool, tag = "4")]
    pub frozen: bool,
    /// Why it was not.
    #[prost(string, tag = "5")]
    pub error: String,
}

/// Thaw frozen filesystems (`thaw`, field 18).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ThawFilesystemsRequest {
    /// The quiesce's token.
    #[prost(string, tag = "1")]
    pub quiesce_token: String,
    /// Mount points to thaw (empty: all frozen).
    #[prost(string, repeated, tag = "2")]
    pub mount_points: Vec<String>,
    /// Run the post-thaw hooks.
    #[prost(bool, tag = "3")]
    pub run_post_thaw_scripts: bool,
    /// Where the post-thaw hooks are.
    #[prost(string, tag = "4")]
    pub post_thaw_script_dir: String,
}

/// Result of a thaw (`thaw_response`, field 58).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ThawFilesystemsResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// What was thawed.
    #[prost(string, repeated, tag = "2")]
    pub thawed_mount_points: Vec<String>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
    /// How long the filesystems were frozen, in milliseconds.
    #[prost(uint64, tag = "4")]
    pub frozen_duration_ms: u64,
}

/// Resynchronise the guest clock (`sync_time`, field 19).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncTimeRequest {
    /// Step the clock at once instead of slewing.
    #[prost(bool, tag = "1")]
    pub force: bool,
    /// Set the clock to this time (otherwise NTP).
    #[prost(message, optional, tag = "2")]
    pub set_time: Option<Timestamp>,
}

/// Result of a clock resync (`sync_time_response`, field 59).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncTimeResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The correction applied, in seconds.
    #[prost(double, tag = "2")]
    #[serde(with = "json::double")]
    pub offset_seconds: f64,
    /// The guest's time afterwards.
    #[prost(message, optional, tag = "3")]
    pub current_time: Option<Timestamp>,
    /// The time source used (`ntp`, `chrony`, `manual`, …).
    #[prost(string, tag = "4")]
    pub time_source: String,
    /// Why it failed.
    #[prost(string, tag = "5")]
    pub error: String,
}
