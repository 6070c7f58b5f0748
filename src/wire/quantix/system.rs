//! Process and service management (`agent.proto` fields and numbers).

use serde::{Deserialize, Serialize};

use super::enums::ServiceAction;
use super::json;
use super::timestamp::Timestamp;

/// List processes (`list_processes`, field 27).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListProcessesRequest {
    /// Name filter (empty: all).
    #[prost(string, tag = "1")]
    pub filter: String,
    /// Include threads.
    #[prost(bool, tag = "2")]
    pub include_threads: bool,
    /// Maximum entries (0: unlimited).
    #[prost(uint32, tag = "3")]
    pub max_entries: u32,
}

/// The process list (`list_processes_response`, field 67).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListProcessesResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The processes.
    #[prost(message, repeated, tag = "2")]
    pub processes: Vec<ProcessInfo>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
}

/// One process.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    /// Process id.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    /// Parent process id.
    #[prost(uint32, tag = "2")]
    pub ppid: u32,
    /// Name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Full command line.
    #[prost(string, tag = "4")]
    pub command_line: String,
    /// Owner.
    #[prost(string, tag = "5")]
    pub user: String,
    /// CPU use in percent.
    #[prost(double, tag = "6")]
    #[serde(with = "json::double")]
    pub cpu_percent: f64,
    /// Memory use.
    #[prost(uint64, tag = "7")]
    pub memory_bytes: u64,
    /// State (running, sleeping, zombie, …).
    #[prost(string, tag = "8")]
    pub state: String,
    /// Start time.
    #[prost(message, optional, tag = "9")]
    pub started_at: Option<Timestamp>,
    /// Number of threads.
    #[prost(uint32, tag = "10")]
    pub thread_count: u32,
    /// Working directory.
    #[prost(string, tag = "11")]
    pub working_directory: String,
}

/// Signal a process (`kill_process`, field 28).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct KillProcessRequest {
    /// Process id.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    /// Signal number.
    #[prost(int32, tag = "2")]
    pub signal: i32,
}

/// Result of a kill (`kill_process_response`, field 68).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct KillProcessResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// Why it failed.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// List services (`list_services`, field 29).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListServicesRequest {
    /// Name filter (empty: all).
    #[prost(string, tag = "1")]
    pub filter: String,
    /// Only running services.
    #[prost(bool, tag = "2")]
    pub running_only: bool,
}

/// The service list (`list_services_response`, field 69).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListServicesResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The services.
    #[prost(message, repeated, tag = "2")]
    pub services: Vec<ServiceInfo>,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
}

/// One service.
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceInfo {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Display name.
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// State (running, stopped, …).
    #[prost(string, tag = "3")]
    pub state: String,
    /// Start type (auto, manual, disabled).
    #[prost(string, tag = "4")]
    pub start_type: String,
    /// Description.
    #[prost(string, tag = "5")]
    pub description: String,
    /// Process id, if running.
    #[prost(uint32, tag = "6")]
    pub pid: u32,
    /// Memory use, if running.
    #[prost(uint64, tag = "7")]
    pub memory_bytes: u64,
}

/// Act on a service (`service_control`, field 30).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceControlRequest {
    /// Service name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// What to do (a [`ServiceAction`]).
    #[prost(enumeration = "ServiceAction", tag = "2")]
    #[serde(
        serialize_with = "json::enum_ser::<ServiceAction, _>",
        deserialize_with = "json::enum_de::<ServiceAction, _>"
    )]
    pub action: i32,
}

/// Result of a service action (`service_control_response`, field 70).
#[derive(Clone, PartialEq, ::prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceControlResponse {
    /// Whether it succeeded.
    #[prost(bool, tag = "1")]
    pub success: bool,
    /// The service's state afterwards.
    #[prost(string, tag = "2")]
    pub new_state: String,
    /// Why it failed.
    #[prost(string, tag = "3")]
    pub error: String,
}
