//! Directory and file-metadata operations: list, create, delete, stat, and the directory entry
//! they share (`agent.proto` fields and numbers).

use serde::{Deserialize, Serialize};

use super::timestamp::Timestamp;

/// List a directory (`list_directory`, field 20).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListDirectoryRequest {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Include dot files.
    #[prost(bool, tag = "2")]
    pub include_hidden: bool,
    /// Page size (0: unlimited).
    #[prost(uint32, tag = "3")]
    pub max_entries: u32,
    /// Token of the page to continue from.
    #[prost(string, tag = "4")]
    pub continuation_token: String,
}

/// A page of a directory (`list_directory_response`, field 60).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListDirectoryResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<DirectoryEntry>,
    /// Token of the next page (empty: none).
    #[prost(string, tag = "3")]
    pub continuation_token: String,
    /// Why it failed.
    #[prost(string, tag = "4")]
    pub error: String,
    /// Number of entries in all, if known.
    #[prost(uint32, tag = "5")]
    pub total_entries: u32,
}

/// One file or directory.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct DirectoryEntry {
    /// Base name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Absolute path.
    #[prost(string, tag = "2")]
    pub path: String,
    /// A directory.
    #[prost(bool, tag = "3")]
    pub is_directory: bool,
    /// A symbolic link.
    #[prost(bool, tag = "4")]
    pub is_symlink: bool,
    /// Size (0 for directories).
    #[prost(uint64, tag = "5")]
    pub size_bytes: u64,
    /// Unix mode.
    #[prost(uint32, tag = "6")]
    pub mode: u32,
    /// Last modification.
    #[prost(message, optional, tag = "7")]
    pub modified_at: Option<Timestamp>,
    /// Creation, if known.
    #[prost(message, optional, tag = "8")]
    pub created_at: Option<Timestamp>,
    /// Owner.
    #[prost(string, tag = "9")]
    pub owner: String,
    /// Group.
    #[prost(string, tag = "10")]
    pub group: String,
    /// Link target.
    #[prost(string, tag = "11")]
    pub symlink_target: String,
}

/// Create a directory (`create_directory`, field 21).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateDirectoryRequest {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Create missing parents.
    #[prost(bool, tag = "2")]
    pub create_parents: bool,
    /// Unix mode.
    #[prost(uint32, tag = "3")]
    pub mode: u32,
}

/// Result of a directory creation (`create_directory_response`, field 61).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateDirectoryResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Why it failed.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Delete a file or directory (`file_delete`, field 22).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileDeleteRequest {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Delete directories recursively.
    #[prost(bool, tag = "2")]
    pub recursive: bool,
}

/// Result of a delete (`file_delete_response`, field 62).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileDeleteResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Why it failed.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Stat a path (`file_stat`, field 23).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileStatRequest {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
}

/// Result of a stat (`file_stat_response`, field 63).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct FileStatResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// What is there.
    #[prost(message, optional, tag = "2")]
    pub entry: Option<DirectoryEntry>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
}
