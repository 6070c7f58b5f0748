//! Agent self-management: chunked self-update and the capabilities query (`agent.proto` fields
//! and numbers).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::enums::UpdateState;
use super::json;

/// A chunk of a new agent binary (`agent_update`, field 33).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentUpdateRequest {
    /// Version being installed.
    #[prost(string, tag = "1")]
    pub target_version: String,
    /// This chunk of the binary.
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(with = "json::base64_bytes")]
    pub binary_data: Bytes,
    /// Chunk number, from 0.
    #[prost(uint32, tag = "3")]
    pub chunk_number: u32,
    /// The last chunk.
    #[prost(bool, tag = "4")]
    pub is_last_chunk: bool,
    /// SHA-256 of the whole binary.
    #[prost(string, tag = "5")]
    pub checksum_sha256: String,
    /// Size of the whole binary.
    #[prost(uint64, tag = "6")]
    pub total_size: u64,
}

/// Progress of a self-update (`agent_update_response`, field 73).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentUpdateResponse {
    /// Whether the step succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The running version.
    #[prost(string, tag = "2")]
    pub current_version: String,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
    /// A restart is needed.
    #[prost(bool, tag = "4")]
    pub restart_required: bool,
    /// Progress, 0–100.
    #[prost(uint32, tag = "5")]
    pub progress_percent: u32,
    /// Where the update is (an [`UpdateState`]).
    #[prost(enumeration = "UpdateState", tag = "6")]
    #[serde(
        serialize_with = "json::enum_ser::<UpdateState, _>",
        deserialize_with = "json::enum_de::<UpdateState, _>"
    )]
    pub state: i32,
}

/// Ask what the agent can do (`get_capabilities`, field 34; no fields).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct GetCapabilitiesRequest {}

/// What the agent can do (`get_capabilities_response`, field 74).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct GetCapabilitiesResponse {
    /// Agent version.
    #[prost(string, tag = "1")]
    pub version: String,
    /// Operating system.
    #[prost(string, tag = "2")]
    pub os: String,
    /// Architecture.
    #[prost(string, tag = "3")]
    pub architecture: String,
    /// Capability names.
    #[prost(string, repeated, tag = "4")]
    pub capabilities: Vec<String>,
    /// Feature flags.
    #[prost(btree_map = "string, string", tag = "5")]
    pub features: BTreeMap<String, String>,
    /// Build time.
    #[prost(string, tag = "6")]
    pub build_time: String,
    /// Build commit.
    #[prost(string, tag = "7")]
    pub build_commit: String,
}
