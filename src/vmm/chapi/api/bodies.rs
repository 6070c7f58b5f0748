//! The bodies of replies: counters, the device tree, and the pieces of requests they need.

use serde_json::{Value, json};

use super::Response;
use crate::vmm::chapi::codes::{CodeMode, Endpoint, wrong_method_status};
use crate::vmm::chapi::config::VmConfig;
use crate::vmm::chapi::errors::{BAD_REQUEST, deserialize_chain};

/// The answer to a method the endpoint does not take.
pub(super) fn wrong_method(mode: CodeMode, endpoint: Endpoint, method: &str) -> Response {
    let status = wrong_method_status(mode);
    let mut r = match mode {
        CodeMode::Spec => Response::chain(status, &["Method Not Allowed".into()]),
        // The shared VmActionHandler answers methods other than GET and PUT with no body.
        CodeMode::Real if !endpoint.has_own_handler() && !matches!(method, "GET" | "PUT") => {
            Response::new(status, Vec::new())
        }
        CodeMode::Real => Response::chain(status, &[BAD_REQUEST.into()]),
    };
    if mode == CodeMode::Spec {
        r.headers.push(("Allow".into(), endpoint.method().into()));
    }
    r
}

/// The string field `field` of a JSON body, or the chain of a 400.
pub(super) fn url_field(body: &[u8], field: &str) -> Result<String, Vec<String>> {
    if body.is_empty() {
        return Err(vec![BAD_REQUEST.into()]);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| deserialize_chain(&e.to_string()))?;
    match value.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(deserialize_chain(&format!(
            "invalid type for `{field}`, expected a string"
        ))),
        None if value.is_object() => Err(deserialize_chain(&format!("missing field `{field}`"))),
        None => Err(deserialize_chain("invalid type, expected a struct")),
    }
}

/// `vm.counters`: every disk and net device with its (idle) counters.
pub(super) fn counters(config: &VmConfig) -> Value {
    let mut out = serde_json::Map::new();
    for (id, kind) in config.devices() {
        let names: &[&str] = match kind {
            "disk" => &["read_bytes", "read_ops", "write_bytes", "write_ops"],
            "net" => &["rx_bytes", "rx_frames", "tx_bytes", "tx_frames"],
            _ => continue,
        };
        let c: serde_json::Map<String, Value> =
            names.iter().map(|n| (n.to_string(), json!(0))).collect();
        out.insert(id, Value::Object(c));
    }
    Value::Object(out)
}

/// `vm.info`'s `device_tree` of a booted VM: one PCI device per configured device.
pub(super) fn device_tree(config: &VmConfig) -> Value {
    let tree: serde_json::Map<String, Value> = config
        .devices()
        .into_iter()
        .enumerate()
        .map(|(i, (id, _))| {
            let node = json!({
                "id": id,
                "resources": [],
                "children": [],
                "pci_bdf": format!("0000:00:{:02x}.0", i + 1),
            });
            (id, node)
        })
        .collect();
    Value::Object(tree)
}
