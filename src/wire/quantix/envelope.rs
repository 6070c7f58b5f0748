//! The envelope every quantix frame carries: `AgentMessage { message_id = 1; timestamp = 2;
//! oneof payload { … } }` of `limiquantix.agent.v1`, with every payload arm of the agent's
//! `agent.proto` under its proto name and field number: requests 10–34, their responses 50–74
//! (a request's response is always its field number plus 40), events 100–103.
//!
//! The arm table is written once (the `agent_message!` invocation below) and everything that
//! names arms — the prost oneof, [`Payload::name`], [`Payload::ARMS`], the JSON form — is
//! generated from it, so they cannot drift apart.
//!
//! The JSON form of the envelope (the oneof flattened under the arm's name) is in
//! [`json`](super::json).

use serde::de::MapAccess;
use serde::ser::SerializeMap;

use super::agent::*;
use super::core::*;
use super::desktop::*;
use super::events::*;
use super::files::*;
use super::inventory::*;
use super::snapshot::*;
use super::system::*;
use super::timestamp::Timestamp;

/// The protobuf package of the agent protocol.
pub const PACKAGE: &str = "limiquantix.agent.v1";

/// Offset from a request's field number to its response's (ping 10 → pong 50).
pub const RESPONSE_FIELD_OFFSET: u32 = 40;

/// Whether a message asks, answers, or tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Host → guest request (fields 10–49).
    Request,
    /// Guest → host reply to a request (fields 50–99).
    Response,
    /// Unsolicited guest → host event (fields 100 and up); never answers a request.
    Event,
}

impl MessageKind {
    /// The kind of a payload field number, by the protocol's numbering ranges.
    pub fn of_field(field: u32) -> Option<Self> {
        match field {
            10..=49 => Some(Self::Request),
            50..=99 => Some(Self::Response),
            100..=199 => Some(Self::Event),
            _ => None,
        }
    }

    /// `request`, `response` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Event => "event",
        }
    }
}

macro_rules! agent_message {
    ( $( $variant:ident($ty:ty) = $num:tt, $name:literal; )+ ) => {
        /// The envelope of every quantix message (`limiquantix.agent.v1.AgentMessage`).
        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct AgentMessage {
            /// Pairs a request with its response (empty on most events).
            #[prost(string, tag = "1")]
            pub message_id: String,
            /// When the sender made the message.
            #[prost(message, optional, tag = "2")]
            pub timestamp: Option<Timestamp>,
            /// What the message is; `None` when absent or of an arm this version does not know.
            #[prost(oneof = "Payload", tags($($num),+))]
            pub payload: Option<Payload>,
        }

        /// The `payload` oneof: one variant per arm, named as prost names the proto's arms.
        #[derive(Clone, PartialEq, ::prost::Oneof)]
        pub enum Payload {
            $(
                #[doc = concat!("`", $name, "` (field ", stringify!($num), ").")]
                #[prost(message, tag = $num)]
                $variant($ty),
            )+
        }

        impl Payload {
            /// Every arm as (field number, proto name), in field order.
            pub const ARMS: &'static [(u32, &'static str)] = &[ $( ($num, $name), )+ ];

            /// The arm's proto name, e.g. `ping`, `hardware_info_response`.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $name, )+
                }
            }

            /// The arm's field number in `AgentMessage`.
            pub fn field_number(&self) -> u32 {
                match self {
                    $( Self::$variant(_) => $num, )+
                }
            }

            /// Writes the arm as one `name: value` map entry.
            pub(super) fn serialize_entry<M: SerializeMap>(
                &self,
                map: &mut M,
            ) -> Result<(), M::Error> {
                match self {
                    $( Self::$variant(m) => map.serialize_entry($name, m), )+
                }
            }

            /// Reads the value of the arm called `name`; `None` when there is no such arm.
            pub(super) fn deserialize_arm<'de, A: MapAccess<'de>>(
                name: &str,
                map: &mut A,
            ) -> Result<Option<Self>, A::Error> {
                Ok(Some(match name {
                    $( $name => Self::$variant(map.next_value()?), )+
                    _ => return Ok(None),
                }))
            }
        }

        $(
            impl From<$ty> for Payload {
                fn from(m: $ty) -> Self {
                    Self::$variant(m)
                }
            }
        )+
    };
}

agent_message! {
    Ping(PingRequest) = 10, "ping";
    Execute(ExecuteRequest) = 11, "execute";
    FileWrite(FileWriteRequest) = 12, "file_write";
    FileRead(FileReadRequest) = 13, "file_read";
    Shutdown(ShutdownRequest) = 14, "shutdown";
    ResetPassword(ResetPasswordRequest) = 15, "reset_password";
    ConfigureNetwork(ConfigureNetworkRequest) = 16, "configure_network";
    Quiesce(QuiesceFilesystemsRequest) = 17, "quiesce";
    Thaw(ThawFilesystemsRequest) = 18, "thaw";
    SyncTime(SyncTimeRequest) = 19, "sync_time";
    ListDirectory(ListDirectoryRequest) = 20, "list_directory";
    CreateDirectory(CreateDirectoryRequest) = 21, "create_directory";
    FileDelete(FileDeleteRequest) = 22, "file_delete";
    FileStat(FileStatRequest) = 23, "file_stat";
    DisplayResize(DisplayResizeRequest) = 24, "display_resize";
    ClipboardUpdate(ClipboardUpdateRequest) = 25, "clipboard_update";
    ClipboardGet(ClipboardGetRequest) = 26, "clipboard_get";
    ListProcesses(ListProcessesRequest) = 27, "list_processes";
    KillProcess(KillProcessRequest) = 28, "kill_process";
    ListServices(ListServicesRequest) = 29, "list_services";
    ServiceControl(ServiceControlRequest) = 30, "service_control";
    GetHardwareInfo(GetHardwareInfoRequest) = 31, "get_hardware_info";
    ListInstalledSoftware(ListInstalledSoftwareRequest) = 32, "list_installed_software";
    AgentUpdate(AgentUpdateRequest) = 33, "agent_update";
    GetCapabilities(GetCapabilitiesRequest) = 34, "get_capabilities";

    Pong(PongResponse) = 50, "pong";
    ExecuteResponse(ExecuteResponse) = 51, "execute_response";
    FileWriteResponse(FileWriteResponse) = 52, "file_write_response";
    FileReadResponse(FileReadResponse) = 53, "file_read_response";
    ShutdownResponse(ShutdownResponse) = 54, "shutdown_response";
    ResetPasswordResponse(ResetPasswordResponse) = 55, "reset_password_response";
    ConfigureNetworkResponse(ConfigureNetworkResponse) = 56, "configure_network_response";
    QuiesceResponse(QuiesceFilesystemsResponse) = 57, "quiesce_response";
    ThawResponse(ThawFilesystemsResponse) = 58, "thaw_response";
    SyncTimeResponse(SyncTimeResponse) = 59, "sync_time_response";
    ListDirectoryResponse(ListDirectoryResponse) = 60, "list_directory_response";
    CreateDirectoryResponse(CreateDirectoryResponse) = 61, "create_directory_response";
    FileDeleteResponse(FileDeleteResponse) = 62, "file_delete_response";
    FileStatResponse(FileStatResponse) = 63, "file_stat_response";
    DisplayResizeResponse(DisplayResizeResponse) = 64, "display_resize_response";
    ClipboardUpdateResponse(ClipboardUpdateResponse) = 65, "clipboard_update_response";
    ClipboardGetResponse(ClipboardGetResponse) = 66, "clipboard_get_response";
    ListProcessesResponse(ListProcessesResponse) = 67, "list_processes_response";
    KillProcessResponse(KillProcessResponse) = 68, "kill_process_response";
    ListServicesResponse(ListServicesResponse) = 69, "list_services_response";
    ServiceControlResponse(ServiceControlResponse) = 70, "service_control_response";
    HardwareInfoResponse(GetHardwareInfoResponse) = 71, "hardware_info_response";
    ListInstalledSoftwareResponse(ListInstalledSoftwareResponse) = 72,
        "list_installed_software_response";
    AgentUpdateResponse(AgentUpdateResponse) = 73, "agent_update_response";
    GetCapabilitiesResponse(GetCapabilitiesResponse) = 74, "get_capabilities_response";

    Telemetry(TelemetryReport) = 100, "telemetry";
    AgentReady(AgentReadyEvent) = 101, "agent_ready";
    Error(ErrorEvent) = 102, "error";
    ClipboardChanged(ClipboardChangedEvent) = 103, "clipboard_changed";
}

impl Payload {
    /// The proto name of the arm with this field number, if there is one.
    pub fn name_of(field: u32) -> Option<&'static str> {
        Self::ARMS
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, name)| *name)
    }

    /// The field number of the arm with this proto name, if there is one.
    pub fn field_of(name: &str) -> Option<u32> {
        Self::ARMS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(field, _)| *field)
    }

    /// Request, response or event.
    pub fn kind(&self) -> MessageKind {
        MessageKind::of_field(self.field_number()).unwrap_or(MessageKind::Event)
    }

    /// For a request arm, the field number of the response arm that answers it.
    pub fn response_field_number(&self) -> Option<u32> {
        match self.kind() {
            MessageKind::Request => Some(self.field_number() + RESPONSE_FIELD_OFFSET),
            _ => None,
        }
    }

    /// For a request arm, the proto name of its response arm (`ping` → `pong`,
    /// `get_hardware_info` → `hardware_info_response`).
    pub fn response_name(&self) -> Option<&'static str> {
        self.response_field_number().and_then(Self::name_of)
    }

    /// The response arm's name for a request arm's name (`execute` → `execute_response`).
    pub fn response_name_for(request: &str) -> Option<&'static str> {
        let field = Self::field_of(request)?;
        (MessageKind::of_field(field) == Some(MessageKind::Request))
            .then(|| Self::name_of(field + RESPONSE_FIELD_OFFSET))
            .flatten()
    }

    /// For a response arm, the proto name of the request arm it answers.
    pub fn request_name(&self) -> Option<&'static str> {
        match self.kind() {
            MessageKind::Response => Self::name_of(self.field_number() - RESPONSE_FIELD_OFFSET),
            _ => None,
        }
    }

    /// Whether this payload is the kind of response that answers `request`.
    pub fn is_response_to(&self, request: &Payload) -> bool {
        request.response_field_number() == Some(self.field_number())
    }
}

impl AgentMessage {
    /// A message with the given id and payload and no timestamp.
    pub fn new(message_id: impl Into<String>, payload: impl Into<Payload>) -> Self {
        Self {
            message_id: message_id.into(),
            timestamp: None,
            payload: Some(payload.into()),
        }
    }

    /// The same message with a timestamp.
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Request, response or event, by the payload's field number; `None` without a payload.
    pub fn kind(&self) -> Option<MessageKind> {
        self.payload.as_ref().map(Payload::kind)
    }

    /// The payload arm's proto name, if there is a payload.
    pub fn payload_name(&self) -> Option<&'static str> {
        self.payload.as_ref().map(Payload::name)
    }

    /// Whether this message answers `request` (same id, matching response arm).
    pub fn answers(&self, request: &AgentMessage) -> bool {
        self.message_id == request.message_id
            && match (&self.payload, &request.payload) {
                (Some(reply), Some(req)) => reply.is_response_to(req),
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use prost::Message as _;

    use super::*;
    use crate::wire::quantix::{ClipboardType, ShutdownType};

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    /// An empty payload of the arm called `name`, through the JSON form.
    fn empty_arm(name: &str) -> Payload {
        serde_json::from_value(serde_json::json!({ name: {} })).expect("arm from JSON")
    }

    #[test]
    fn the_arm_table_is_the_protos() {
        assert_eq!(Payload::ARMS.len(), 25 + 25 + 4);
        let fields: Vec<u32> = Payload::ARMS.iter().map(|(f, _)| *f).collect();
        let expected: Vec<u32> = (10..=34).chain(50..=74).chain(100..=103).collect();
        assert_eq!(fields, expected);
        for (field, name) in [
            (17, "quiesce"),
            (31, "get_hardware_info"),
            (57, "quiesce_response"),
            (71, "hardware_info_response"),
            (100, "telemetry"),
            (102, "error"),
            (103, "clipboard_changed"),
        ] {
            assert_eq!(Payload::name_of(field), Some(name));
            assert_eq!(Payload::field_of(name), Some(field));
        }
    }

    #[test]
    fn every_arm_encodes_under_its_field_number_and_decodes_back() {
        for (field, name) in Payload::ARMS {
            let payload = empty_arm(name);
            assert_eq!(payload.name(), *name);
            assert_eq!(payload.field_number(), *field);
            let msg = AgentMessage::new("x", payload);
            let bytes = msg.encode_to_vec();
            // 0a 01 'x' (message_id), then the arm's tag: field << 3 | length-delimited.
            assert_eq!(&bytes[..3], b"\x0a\x01x");
            let tag = varint(u64::from(*field) << 3 | 2);
            assert_eq!(&bytes[3..3 + tag.len()], &tag[..], "{name}");
            assert_eq!(AgentMessage::decode(&bytes[..]).expect("decode"), msg);
        }
        let hw = AgentMessage::new("x", empty_arm("hardware_info_response")).encode_to_vec();
        assert_eq!(&hw[3..5], &[0xba, 0x04], "field 71 is tag 570");
    }

    #[test]
    fn requests_pair_with_their_responses() {
        let ping = empty_arm("ping");
        assert_eq!(ping.kind(), MessageKind::Request);
        assert_eq!(ping.response_name(), Some("pong"));
        assert_eq!(
            empty_arm("get_hardware_info").response_name(),
            Some("hardware_info_response")
        );
        assert_eq!(
            Payload::response_name_for("execute"),
            Some("execute_response")
        );
        assert_eq!(Payload::response_name_for("pong"), None);
        assert_eq!(Payload::response_name_for("telemetry"), None);
        for (field, name) in Payload::ARMS {
            let p = empty_arm(name);
            match MessageKind::of_field(*field) {
                Some(MessageKind::Request) => {
                    let reply = empty_arm(p.response_name().expect("every request has a reply"));
                    assert!(reply.is_response_to(&p));
                    assert_eq!(reply.kind(), MessageKind::Response);
                    assert_eq!(reply.request_name(), Some(*name));
                }
                Some(MessageKind::Event) => {
                    assert_eq!(p.kind(), MessageKind::Event);
                    assert_eq!(p.response_name(), None);
                    assert_eq!(p.request_name(), None);
                }
                _ => assert_eq!(p.kind(), MessageKind::Response),
            }
        }
        let req = AgentMessage::new("9", PingRequest { sequence: 1 });
        let reply = AgentMessage::new("9", PongResponse::default());
        assert!(reply.answers(&req));
        assert!(!AgentMessage::new("8", PongResponse::default()).answers(&req));
        assert!(!AgentMessage::new("9", ExecuteResponse::default()).answers(&req));
        assert_eq!(req.kind(), Some(MessageKind::Request));
        assert_eq!(AgentMessage::default().kind(), None);
    }

    #[test]
    fn json_shape_of_the_envelope() {
        let msg = AgentMessage::new("7", PingRequest { sequence: 3 });
        assert_eq!(
            serde_json::to_string(&msg).expect("json"),
            r#"{"message_id":"7","timestamp":null,"ping":{"sequence":3}}"#
        );
        let msg = msg.with_timestamp(Timestamp::new(1_795_341_600, 500_000_000));
        let text = serde_json::to_string(&msg).expect("json");
        assert_eq!(
            text,
            r#"{"message_id":"7","timestamp":"2026-11-22T10:00:00.5Z","ping":{"sequence":3}}"#
        );
        assert_eq!(
            serde_json::from_str::<AgentMessage>(&text).expect("back"),
            msg
        );
        let odd = AgentMessage::new("7", PingRequest { sequence: 3 })
            .with_timestamp(Timestamp::new(i64::MIN, -5));
        let v = serde_json::to_value(&odd).expect("json");
        assert_eq!(
            v["timestamp"],
            serde_json::json!({"seconds": i64::MIN, "nanos": -5})
        );
        assert_eq!(
            serde_json::from_value::<AgentMessage>(v).expect("back"),
            odd
        );
    }

    #[test]
    fn json_enums_bytes_and_defaults() {
        let shut = AgentMessage::new(
            "1",
            ShutdownRequest {
                r#type: ShutdownType::Reboot as i32,
                delay_seconds: 5,
                message: String::new(),
            },
        );
        let v = serde_json::to_value(&shut).expect("json");
        assert_eq!(v["shutdown"]["type"], "SHUTDOWN_TYPE_REBOOT");
        assert_eq!(
            serde_json::from_value::<AgentMessage>(v).expect("back"),
            shut
        );

        let clip = AgentMessage::new(
            "2",
            ClipboardChangedEvent {
                r#type: 77,
                data: Bytes::from_static(b"hello"),
                mime_type: "text/plain".into(),
            },
        );
        let v = serde_json::to_value(&clip).expect("json");
        assert_eq!(
            v["clipboard_changed"]["type"], 77,
            "unknown value as a number"
        );
        assert_eq!(v["clipboard_changed"]["data"], "aGVsbG8=");
        assert_eq!(
            serde_json::from_value::<AgentMessage>(v).expect("back"),
            clip
        );

        let sparse: AgentMessage =
            serde_json::from_str(r#"{"clipboard_update": {"type": "CLIPBOARD_TYPE_HTML"}}"#)
                .expect("missing fields are defaults");
        assert_eq!(sparse.message_id, "");
        match sparse.payload {
            Some(Payload::ClipboardUpdate(c)) => {
                assert_eq!(c.r#type, ClipboardType::Html as i32);
                assert!(c.data.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_rejects_unknown_and_doubled_arms() {
        for bad in [
            r#"{"message_id": "1", "pingg": {}}"#,
            r#"{"ping": {}, "pong": {}}"#,
            r#"{"shutdown": {"type": "REBOOT"}}"#,
            r#"{"file_write": {"data": "not base64!"}}"#,
        ] {
            assert!(serde_json::from_str::<AgentMessage>(bad).is_err(), "{bad}");
        }
        let p: Payload = serde_json::from_str(r#"{"pong": {"sequence": 2}}"#).expect("bare");
        assert_eq!(p.name(), "pong");
        assert_eq!(
            serde_json::to_value(&p).expect("json"),
            serde_json::json!({"pong": {"sequence": 2, "version": "", "uptime_seconds": 0}})
        );
    }
}
