//! `VmConfig`, the body of `vm.create` (and `config.json` of a snapshot): parsed, checked against
//! the OpenAPI schema's required fields, and kept as JSON to echo back in `vm.info`.
//!
//! What is checked: the body is a JSON object; `payload` is present (the schema's one required
//! field) and names a `kernel`, `firmware` or `igvm`; `cpus`, if given, has integer
//! `boot_vcpus` and `max_vcpus`, both ≥ 1, boot ≤ max; `memory`, if given, has an integer `size`;
//! `vsock`, if given, has an integer `cid` ≥ 3 (0–2 are the hypervisor, local and host CIDs) and
//! below `u32::MAX` (`VMADDR_CID_ANY`), and a non-empty `socket` path. Everything else is kept
//! as sent. Defaults the real VMM fills in are added when absent: `cpus` {1, 1} and `memory`
//! 512 MiB.
//!
//! Deviation, on purpose: the real `VmConfig` has `payload: Option<PayloadConfig>` and checks
//! the kernel and the vsock CID only at boot (`Vm::new` → `validate()`, a 500); this mock rejects
//! them at create with a 400, as the spec's `required` asks. The message follows serde's words
//! (`missing field `payload``, `invalid value: ...`), the body `["Failed to deserialize JSON",
//! message]` as the real server writes for a body it cannot deserialize.

use std::path::PathBuf;

use serde_json::{Map, Value};

/// The default memory size of the real VMM (`DEFAULT_MEMORY_MB` = 512).
pub const DEFAULT_MEMORY_SIZE: u64 = 512 * 1024 * 1024;

/// The lowest guest context id: 0, 1 and 2 are the hypervisor, local and host.
pub const MIN_GUEST_CID: u64 = 3;

/// Why a `VmConfig` was refused, in serde's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The `vsock` device of a `VmConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockConfig {
    /// The guest's context id (≥ 3).
    pub cid: u64,
    /// The host-side Unix socket of the hybrid vsock.
    pub socket: PathBuf,
    /// The device id, when given.
    pub id: Option<String>,
}

/// A checked `VmConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct VmConfig {
    json: Map<String, Value>,
    vsock: Option<VsockConfig>,
}

fn missing(field: &str) -> ConfigError {
    ConfigError(format!("missing field `{field}`"))
}

fn invalid(what: &str, got: &Value, expected: &str) -> ConfigError {
    let got = match got {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".to_string(),
        Value::Object(_) => "map".to_string(),
    };
    ConfigError(format!(
        "invalid value for `{what}`: {got}, expected {expected}"
    ))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object()
        .ok_or_else(|| invalid(what, v, &format!("struct {what}")))
}

fn integer(
    parent: &Map<String, Value>,
    field: &str,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let v = parent.get(field).ok_or_else(|| missing(field))?;
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            field,
            v,
            &format!("an integer from {min} to {max}"),
        )),
    }
}

impl VmConfig {
    /// Parses and checks a `VmConfig` body.
    pub fn parse(body: &[u8]) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| ConfigError(e.to_string()))?;
        let mut json = object(&value, "VmConfig")?.clone();

        let payload = object(
            json.get("payload").ok_or_else(|| missing("payload"))?,
            "payload",
        )?;
        let has_image = ["kernel", "firmware", "igvm"]
            .iter()
            .any(|k| payload.get(*k).is_some_and(Value::is_string));
        if !has_image {
            return Err(ConfigError(
                "invalid value for `payload`: expected a `kernel`, `firmware` or `igvm` path"
                    .into(),
            ));
        }

        match json.get("cpus") {
            Some(cpus) => {
                let cpus = object(cpus, "cpus")?;
                let boot = integer(cpus, "boot_vcpus", 1, u64::from(u8::MAX))?;
                let max = integer(cpus, "max_vcpus", 1, u64::from(u8::MAX))?;
                if boot > max {
                    return Err(ConfigError(format!(
                        "invalid value for `boot_vcpus`: {boot} is more than max_vcpus {max}"
                    )));
                }
            }
            None => {
                json.insert(
                    "cpus".into(),
                    serde_json::json!({"boot_vcpus": 1, "max_vcpus": 1}),
                );
            }
        }

        match json.get("memory") {
            Some(memory) => {
                integer(object(memory, "memory")?, "size", 1, u64::MAX)?;
            }
            None => {
                json.insert(
                    "memory".into(),
                    serde_json::json!({"size": DEFAULT_MEMORY_SIZE}),
                );
            }
        }

        let vsock = match json.get("vsock") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let v = object(v, "vsock")?;
                let cid = integer(v, "cid", MIN_GUEST_CID, u64::from(u32::MAX) - 1)?;
                let socket = v.get("socket").ok_or_else(|| missing("socket"))?;
                let socket = match socket.as_str() {
                    Some(s) if !s.is_empty() => PathBuf::from(s),
                    _ => return Err(invalid("socket", socket, "a socket path")),
                };
                let id = v.get("id").and_then(Value::as_str).map(str::to_string);
                Some(VsockConfig { cid, socket, id })
            }
        };

        Ok(Self { json, vsock })
    }

    /// The config as JSON, with the defaults filled in.
    pub fn to_json(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// The config as compact JSON bytes (what a snapshot's `config.json` holds).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).unwrap_or_default()
    }

    /// The `vsock` device, if any.
    pub fn vsock(&self) -> Option<&VsockConfig> {
        self.vsock.as_ref()
    }

    /// The boot memory size in bytes (`memory.size`).
    pub fn memory_size(&self) -> u64 {
        self.json
            .get("memory")
            .and_then(|m| m.get("size"))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MEMORY_SIZE)
    }

    /// The devices, as `(id, kind)` with `kind` one of `disk`, `net`, `vsock`; ids as given, or
    /// named as the real device manager names them (`_disk0`, `_net1`, `_vsock2`, one counter
    /// across kinds).
    pub fn devices(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        let mut next = 0usize;
        let mut add = |item: &Value, kind: &'static str| {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("_{kind}{next}"));
            next += 1;
            out.push((id, kind));
        };
        for (key, kind) in [("disks", "disk"), ("net", "net")] {
            if let Some(items) = self.json.get(key).and_then(Value::as_array) {
                items.iter().for_each(|item| add(item, kind));
            }
        }
        if let Some(v) = self.json.get("vsock").filter(|v| v.is_object()) {
            add(v, "vsock");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        VmConfig::parse(body.as_bytes()).unwrap_err().0
    }

    #[test]
    fn defaults_are_filled_and_the_rest_is_kept() {
        let c =
            VmConfig::parse(br#"{"payload":{"kernel":"/k"},"serial":{"mode":"Null"}}"#).unwrap();
        let j = c.to_json();
        assert_eq!(j["cpus"]["boot_vcpus"], 1);
        assert_eq!(j["memory"]["size"], DEFAULT_MEMORY_SIZE);
        assert_eq!(j["serial"]["mode"], "Null");
        assert_eq!(c.vsock(), None);
    }

    #[test]
    fn each_required_field_is_named() {
        assert!(err("{").contains("EOF"), "{}", err("{"));
        assert_eq!(
            err("[]"),
            "invalid value for `VmConfig`: sequence, expected struct VmConfig"
        );
        assert_eq!(err("{}"), "missing field `payload`");
        assert!(err(r#"{"payload":{}}"#).contains("kernel"));
        let cpus = r#"{"payload":{"kernel":"/k"},"cpus":{"boot_vcpus":2,"max_vcpus":1}}"#;
        assert!(err(cpus).contains("more than max_vcpus"));
        let memory = r#"{"payload":{"kernel":"/k"},"memory":{}}"#;
        assert_eq!(err(memory), "missing field `size`");
    }

    #[test]
    fn vsock_needs_a_guest_cid_and_a_socket() {
        let v = |vsock: &str| format!(r#"{{"payload":{{"kernel":"/k"}},"vsock":{vsock}}}"#);
        assert!(err(&v(r#"{"cid":2,"socket":"/s"}"#)).contains("integer `2`"));
        assert!(err(&v(r#"{"cid":-1,"socket":"/s"}"#)).contains("`cid`"));
        assert!(err(&v(r#"{"cid":4294967295,"socket":"/s"}"#)).contains("`cid`"));
        assert_eq!(err(&v(r#"{"cid":3}"#)), "missing field `socket`");
        assert!(err(&v(r#"{"cid":3,"socket":""}"#)).contains("`socket`"));
        let ok = VmConfig::parse(v(r#"{"cid":3,"socket":"/s","id":"vs"}"#).as_bytes()).unwrap();
        let vs = ok.vsock().unwrap();
        assert_eq!(
            (vs.cid, vs.socket.to_str(), vs.id.as_deref()),
            (3, Some("/s"), Some("vs"))
        );
        assert_eq!(ok.devices(), vec![("vs".to_string(), "vsock")]);
    }
}
