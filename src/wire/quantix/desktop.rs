//! Desktop integration: display resize and the clipboard in both directions (`agent.proto`
//! fields and numbers).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::enums::ClipboardType;
use super::json;

/// Resize the guest display (`display_resize`, field 24).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DisplayResizeRequest {
    /// Width in pixels.
    #[prost(uint32, tag = "1")]
    pub width: u32,
    /// Height in pixels.
    #[prost(uint32, tag = "2")]
    pub height: u32,
    /// DPI (0: automatic).
    #[prost(uint32, tag = "3")]
    pub dpi: u32,
    /// Which display (empty: the primary).
    #[prost(string, tag = "4")]
    pub display_id: String,
}

/// Result of a resize (`display_resize_response`, field 64).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DisplayResizeResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Width obtained.
    #[prost(uint32, tag = "2")]
    pub actual_width: u32,
    /// Height obtained.
    #[prost(uint32, tag = "3")]
    pub actual_height: u32,
    /// Why it failed.
    #[prost(string, tag = "4")]
    pub error: String,
}

/// Set the guest clipboard (`clipboard_update`, field 25).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipboardUpdateRequest {
    /// Content kind (a [`ClipboardType`]).
    #[prost(enumeration = "ClipboardType", tag = "1")]
    #[serde(
        serialize_with = "json::enum_ser::<ClipboardType, _>",
        deserialize_with = "json::enum_de::<ClipboardType, _>"
    )]
    pub r#type: i32,
    /// Content.
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(with = "json::base64_bytes")]
    pub data: Bytes,
    /// MIME type.
    #[prost(string, tag = "3")]
    pub mime_type: String,
}

/// Result of a clipboard update (`clipboard_update_response`, field 65).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipboardUpdateResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Why it failed.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Read the guest clipboard (`clipboard_get`, field 26).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipboardGetRequest {
    /// Preferred content kind (a [`ClipboardType`]).
    #[prost(enumeration = "ClipboardType", tag = "1")]
    #[serde(
        serialize_with = "json::enum_ser::<ClipboardType, _>",
        deserialize_with = "json::enum_de::<ClipboardType, _>"
    )]
    pub preferred_type: i32,
}

/// The guest clipboard (`clipboard_get_response`, field 66).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipboardGetResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Content kind (a [`ClipboardType`]).
    #[prost(enumeration = "ClipboardType", tag = "2")]
    #[serde(
        serialize_with = "json::enum_ser::<ClipboardType, _>",
        deserialize_with = "json::enum_de::<ClipboardType, _>"
    )]
    pub r#type: i32,
    /// Content.
    #[prost(bytes = "bytes", tag = "3")]
    #[serde(with = "json::base64_bytes")]
    pub data: Bytes,
    /// MIME type.
    #[prost(string, tag = "4")]
    pub mime_type: String,
    /// Why it failed.
    #[prost(string, tag = "5")]
    pub error: String,
}

/// The guest clipboard changed (`clipboard_changed`, field 103, unsolicited).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipboardChangedEvent {
    /// Content kind (a [`ClipboardType`]).
    #[prost(enumeration = "ClipboardType", tag = "1")]
    #[serde(
        serialize_with = "json::enum_ser::<ClipboardType, _>",
        deserialize_with = "json::enum_de::<ClipboardType, _>"
    )]
    pub r#type: i32,
    /// Content.
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(with = "json::base64_bytes")]
    pub data: Bytes,
    /// MIME type.
    #[prost(string, tag = "3")]
    pub mime_type: String,
}
