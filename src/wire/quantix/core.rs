//! The core requests and their responses: ping/pong, execute, file read/write, shutdown, password
//! reset and network configuration (`agent.proto` of the LimiQuantix agent, fields and numbers as
//! there).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::enums::ShutdownType;
use super::json;
use super::timestamp::Timestamp;

/// Health check (`ping`, field 10).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct PingRequest {
    /// Sequence number echoed by the pong, for round-trip timing.
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
}

/// Reply to a ping (`pong`, field 50).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct PongResponse {
    /// The ping's sequence number.
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// Agent version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Agent uptime in seconds.
    #[prost(uint64, tag = "3")]
    pub uptime_seconds: u64,
}

/// Run a command in the guest (`execute`, field 11).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecuteRequest {
    /// Command line (run through the shell when `args` is empty).
    #[prost(string, tag = "1")]
    pub command: String,
    /// Arguments for direct execution.
    #[prost(string, repeated, tag = "2")]
    pub args: Vec<String>,
    /// Working directory.
    #[prost(string, tag = "3")]
    pub working_directory: String,
    /// Extra environment variables.
    #[prost(btree_map = "string, string", tag = "4")]
    pub environment: BTreeMap<String, String>,
    /// Timeout in seconds (0: none).
    #[prost(uint32, tag = "5")]
    pub timeout_seconds: u32,
    /// Whether to wait for the command to finish.
    #[prost(bool, tag = "6")]
    pub wait_for_exit: bool,
    /// User to run as.
    #[prost(string, tag = "7")]
    pub run_as_user: String,
    /// Cap on captured stdout/stderr (0: the agent's default).
    #[prost(uint32, tag = "8")]
    pub max_output_bytes: u32,
    /// Group to run as.
    #[prost(string, tag = "9")]
    pub run_as_group: String,
    /// Whether to keep the user's supplementary groups.
    #[prost(bool, tag = "10")]
    pub include_supplementary_groups: bool,
}

/// Result of a command (`execute_response`, field 51).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecuteResponse {
    /// Exit code (-1 when the command could not run).
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
    /// Captured standard output.
    #[prost(string, tag = "2")]
    pub stdout: String,
    /// Captured standard error.
    #[prost(string, tag = "3")]
    pub stderr: String,
    /// Whether output was cut at the cap.
    #[prost(bool, tag = "4")]
    pub truncated: bool,
    /// Whether the command timed out.
    #[prost(bool, tag = "5")]
    pub timed_out: bool,
    /// Run time in milliseconds.
    #[prost(uint64, tag = "6")]
    pub duration_ms: u64,
    /// Why the command could not start.
    #[prost(string, tag = "7")]
    pub error: String,
}

/// Write (a chunk of) a file (`file_write`, field 12).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileWriteRequest {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
    /// The chunk's data.
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(with = "json::base64_bytes")]
    pub data: Bytes,
    /// Where to write.
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    /// Append instead (ignores `offset`).
    #[prost(bool, tag = "4")]
    pub append: bool,
    /// Last chunk.
    #[prost(bool, tag = "5")]
    pub eof: bool,
    /// File mode, e.g. 0o644.
    #[prost(uint32, tag = "6")]
    pub mode: u32,
    /// Create missing parent directories.
    #[prost(bool, tag = "7")]
    pub create_parents: bool,
    /// Chunk sequence number.
    #[prost(uint32, tag = "8")]
    pub chunk_number: u32,
    /// Number of chunks (set in the first).
    #[prost(uint32, tag = "9")]
    pub total_chunks: u32,
}

/// Result of a file write (`file_write_response`, field 52).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileWriteResponse {
    /// Whether the write succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Bytes written.
    #[prost(uint64, tag = "2")]
    pub bytes_written: u64,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
    /// The acknowledged chunk.
    #[prost(uint32, tag = "4")]
    pub chunk_number: u32,
}

/// Read (a chunk of) a file (`file_read`, field 13).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileReadRequest {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Where to start.
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    /// How much to read (0: all).
    #[prost(uint64, tag = "3")]
    pub length: u64,
    /// Chunk size for streaming.
    #[prost(uint32, tag = "4")]
    pub chunk_size: u32,
}

/// A chunk of a file (`file_read_response`, field 53).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileReadResponse {
    /// Whether the read succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The data.
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(with = "json::base64_bytes")]
    pub data: Bytes,
    /// Last chunk.
    #[prost(bool, tag = "3")]
    pub eof: bool,
    /// Size of the whole file.
    #[prost(uint64, tag = "4")]
    pub total_size: u64,
    /// Offset of this chunk.
    #[prost(uint64, tag = "5")]
    pub offset: u64,
    /// Chunk number.
    #[prost(uint32, tag = "6")]
    pub chunk_number: u32,
    /// Why it failed.
    #[prost(string, tag = "7")]
    pub error: String,
    /// File mode.
    #[prost(uint32, tag = "8")]
    pub mode: u32,
    /// Last modification time.
    #[prost(message, optional, tag = "9")]
    pub modified_at: Option<Timestamp>,
}

/// Shut the guest down (`shutdown`, field 14).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownRequest {
    /// How (a [`ShutdownType`]).
    #[prost(enumeration = "ShutdownType", tag = "1")]
    #[serde(
        serialize_with = "json::enum_ser::<ShutdownType, _>",
        deserialize_with = "json::enum_de::<ShutdownType, _>"
    )]
    pub r#type: i32,
    /// Delay in seconds.
    #[prost(uint32, tag = "2")]
    pub delay_seconds: u32,
    /// Message broadcast to users.
    #[prost(string, tag = "3")]
    pub message: String,
}

/// Whether the shutdown was started (`shutdown_response`, field 54).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownResponse {
    /// Whether it was accepted.
    #[prost(bool, tag = "1")]
    pub accepted: bool,
    /// Why it was rejected.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Set a user's password (`reset_password`, field 15).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetPasswordRequest {
    /// The user.
    #[prost(string, tag = "1")]
    pub username: String,
    /// The new password (hashed by the agent).
    #[prost(string, tag = "2")]
    pub new_password: String,
    /// Force a change at next login.
    #[prost(bool, tag = "3")]
    pub expire: bool,
}

/// Result of a password reset (`reset_password_response`, field 55).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetPasswordResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Why it failed.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Apply a network configuration (`configure_network`, field 16).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigureNetworkRequest {
    /// Netplan YAML.
    #[prost(string, tag = "1")]
    pub netplan_config: String,
    /// Apply at once.
    #[prost(bool, tag = "2")]
    pub apply_now: bool,
}

/// Result of a network configuration (`configure_network_response`, field 56).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigureNetworkResponse {
    /// Whether it was applied.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Why it failed.
    #[prost(string, tag = "2")]
    pub error: String,
}
