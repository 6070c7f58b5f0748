//! Command arguments checked the way qemu's QAPI input visitor checks them, with its messages:
//! `Parameter 'id' is missing`, `Invalid parameter type for 'id', expected: integer`,
//! `Parameter 'x' is unexpected` (after every declared member was looked at).

use serde_json::{Map, Value};

/// The `arguments` object of one command, as it is being read.
pub(super) struct Args<'a> {
    map: &'a Map<String, Value>,
    seen: Vec<&'static str>,
}

/// A failed argument check: the `desc` of a `GenericError`.
pub(super) type ArgError = String;

fn wrong_type(name: &str, expected: &str) -> ArgError {
    format!("Invalid parameter type for '{name}', expected: {expected}")
}

impl<'a> Args<'a> {
    pub(super) fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            seen: Vec::new(),
        }
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.push(name);
        self.map.get(name)
    }

    fn required<T>(name: &str, v: Option<T>) -> Result<T, ArgError> {
        v.ok_or_else(|| format!("Parameter '{name}' is missing"))
    }

    /// An optional 64-bit integer (a double, even a whole one, is refused, as in qemu).
    pub(super) fn opt_int(&mut self, name: &'static str) -> Result<Option<i64>, ArgError> {
        self.get(name)
            .map(|v| v.as_i64().ok_or_else(|| wrong_type(name, "integer")))
            .transpose()
    }

    /// A required 64-bit integer.
    pub(super) fn int(&mut self, name: &'static str) -> Result<i64, ArgError> {
        let v = self.opt_int(name)?;
        Self::required(name, v)
    }

    /// An optional string.
    pub(super) fn opt_str(&mut self, name: &'static str) -> Result<Option<&'a str>, ArgError> {
        self.get(name)
            .map(|v| v.as_str().ok_or_else(|| wrong_type(name, "string")))
            .transpose()
    }

    /// A required string.
    pub(super) fn str(&mut self, name: &'static str) -> Result<&'a str, ArgError> {
        let v = self.opt_str(name)?;
        Self::required(name, v)
    }

    /// An optional boolean.
    pub(super) fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, ArgError> {
        self.get(name)
            .map(|v| v.as_bool().ok_or_else(|| wrong_type(name, "boolean")))
            .transpose()
    }

    /// An optional list of strings.
    pub(super) fn opt_str_list(
        &mut self,
        name: &'static str,
    ) -> Result<Option<Vec<String>>, ArgError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let items = v.as_array().ok_or_else(|| wrong_type(name, "array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| wrong_type(&format!("{name}[{i}]"), "string"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Fails on a member no check asked for.
    pub(super) fn finish(self) -> Result<(), ArgError> {
        match self.map.keys().find(|k| !self.seen.contains(&k.as_str())) {
            Some(k) => Err(format!("Parameter '{k}' is unexpected")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_qemus() {
        let v = json!({"id": "x", "n": 1.0, "l": [1], "b": 1});
        let m = v.as_object().expect("object");
        let mut a = Args::new(m);
        assert_eq!(
            a.int("id").expect_err("type"),
            "Invalid parameter type for 'id', expected: integer"
        );
        assert_eq!(
            a.int("n").expect_err("double"),
            "Invalid parameter type for 'n', expected: integer"
        );
        assert_eq!(
            a.opt_str_list("l").expect_err("item"),
            "Invalid parameter type for 'l[0]', expected: string"
        );
        assert_eq!(
            a.opt_bool("b").expect_err("bool"),
            "Invalid parameter type for 'b', expected: boolean"
        );
        assert_eq!(
            a.str("path").expect_err("missing"),
            "Parameter 'path' is missing"
        );
        let v = json!({"id": 5, "x": 1});
        let mut a = Args::new(v.as_object().expect("object"));
        assert_eq!(a.int("id"), Ok(5));
        assert_eq!(a.finish().expect_err("x"), "Parameter 'x' is unexpected");
    }
}
