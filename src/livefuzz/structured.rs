//! Field-level mutations: of a JSON value (qga commands, fcexec requests, Volant bodies) and of a
//! protobuf message (quantix `AgentMessage` payloads), so that a case reaches the peer's message
//! handlers with a well-framed but ill-typed, out-of-range or unexpected field — what byte-level
//! mutation rarely produces. Pure: the randomness comes from the caller's [`XorShift64`].

use serde_json::{Map, Value};

use crate::fault::XorShift64;

/// Picks an index below `n` (which must be at least 1).
pub(crate) fn pick(rng: &mut XorShift64, n: usize) -> usize {
    let n = n.max(1) as u64;
    usize::try_from(rng.next_u64() % n).unwrap_or(0)
}

/// Strings that parsers and handlers often get wrong.
const NASTY_STRINGS: &[&str] = &[
    "",
    "\u{0}",
    "%s%s%s%n",
    "../../../../../../etc/passwd",
    "\u{202e}\u{fffd}\u{1f600}",
    "-1",
    "NaN",
    "\\u0000",
    "\r\n\r\n",
];

/// Numbers at the edges of the usual integer and float types.
fn nasty_number(rng: &mut XorShift64) -> Value {
    match pick(rng, 9) {
        0 => Value::from(-1),
        1 => Value::from(0),
        2 => Value::from(u64::MAX),
        3 => Value::from(i64::MIN),
        4 => Value::from(u32::MAX),
        5 => Value::from(i64::from(i32::MIN) - 1),
        6 => serde_json::Number::from_f64(1e308).map_or(Value::Null, Value::Number),
        7 => serde_json::Number::from_f64(-0.5).map_or(Value::Null, Value::Number),
        _ => Value::from(rng.next_u64()),
    }
}

/// A replacement value of a random kind: null, a boolean, a nasty number or string, a long
/// string, an empty or nested container.
fn nasty_value(rng: &mut XorShift64) -> Value {
    match pick(rng, 8) {
        0 => Value::Null,
        1 => Value::Bool(rng.next_u64() & 1 == 1),
        2 => nasty_number(rng),
        3 => Value::String(NASTY_STRINGS[pick(rng, NASTY_STRINGS.len())].to_string()),
        4 => Value::String("A".repeat(1 << (8 + pick(rng, 9)))),
        5 => Value::Array(Vec::new()),
        6 => Value::Object(Map::new()),
        _ => {
            let mut v = Value::Null;
            for _ in 0..(16 + pick(rng, 112)) {
                v = Value::Array(vec![v]);
            }
            v
        }
    }
}

/// Paths (object keys and array indices) to every node of `v`, the root included.
fn paths(v: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(PathStep::Key(k.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(PathStep::Index(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in path {
        cur = match (step, cur) {
            (PathStep::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (PathStep::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn show(path: &[PathStep]) -> String {
    if path.is_empty() {
        return "$".into();
    }
    path.iter()
        .map(|s| match s {
            PathStep::Key(k) => format!(".{k}"),
            PathStep::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// Mutates one node of `v`: replaces it with a value of another kind, removes it from its
/// object, or adds an unknown key beside it. Returns what was done, e.g. `$.arguments.id =
/// 18446744073709551615`. `keep` names keys that are never touched (a qga `execute` is kept, so
/// that a mutation cannot turn one command into another).
pub fn mutate_json(v: &mut Value, rng: &mut XorShift64, keep: &[&str]) -> String {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    all.retain(|p| {
        !p.iter()
            .any(|s| matches!(s, PathStep::Key(k) if keep.contains(&k.as_str())))
    });
    if all.is_empty() {
        return "nothing to mutate".into();
    }
    let path = all[pick(rng, all.len())].clone();
    let op = pick(rng, 4);
    if op == 0
        && let Some((PathStep::Key(k), parent)) = path.split_last()
        && let Some(Value::Object(m)) = node_mut(v, parent)
    {
        m.remove(k);
        return format!("removed {}", show(&path));
    }
    if op == 1
        && let Some(Value::Object(m)) = node_mut(v, &path)
    {
        let value = nasty_value(rng);
        let shown = short(&value);
        m.insert("guestwire_unknown".into(), value);
        return format!("added {}.guestwire_unknown = {shown}", show(&path));
    }
    let value = nasty_value(rng);
    let shown = short(&value);
    if let Some(node) = node_mut(v, &path) {
        *node = value;
    }
    format!("{} = {shown}", show(&path))
}

/// A value for a description: its JSON, cut to 40 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…({} bytes)", &s[..i], s.len()),
        None => s,
    }
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// One field of a parsed protobuf message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    number: u64,
    value: PbValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PbValue {
    Varint(u64),
    I64([u8; 8]),
    I32([u8; 4]),
    /// Length-delimited bytes that parse as a message.
    Message(Vec<Field>),
    /// Length-delimited bytes that do not (strings, bytes, packed).
    Bytes(Vec<u8>),
    /// A field written raw by a mutation (tag included).
    Raw(Vec<u8>),
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Parses `b` as a protobuf message, descending into length-delimited fields that parse too
/// (at most `depth` levels). `None` when `b` is not a message.
fn parse(b: &[u8], depth: u32) -> Option<Vec<Field>> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        let value = match (key & 7) as u8 {
            VARINT => PbValue::Varint(read_varint(b, &mut at)?),
            I64 => PbValue::I64(b.get(at..at + 8)?.try_into().ok().inspect(|_| at += 8)?),
            I32 => PbValue::I32(b.get(at..at + 4)?.try_into().ok().inspect(|_| at += 4)?),
            LEN => {
                let len = usize::try_from(read_varint(b, &mut at)?).ok()?;
                let inner = b.get(at..at.checked_add(len)?)?;
                at += len;
                match (depth > 0 && !inner.is_empty())
                    .then(|| parse(inner, depth - 1))
                    .flatten()
                {
                    Some(m) => PbValue::Message(m),
                    None => PbValue::Bytes(inner.to_vec()),
                }
            }
            _ => return None,
        };
        fields.push(Field { number, value });
    }
    Some(fields)
}

fn encode_fields(fields: &[Field], out: &mut Vec<u8>) {
    for f in fields {
        let key = |wt: u8, out: &mut Vec<u8>| put_varint((f.number << 3) | u64::from(wt), out);
        match &f.value {
            PbValue::Varint(v) => {
                key(VARINT, out);
                put_varint(*v, out);
            }
            PbValue::I64(b) => {
                key(I64, out);
                out.extend_from_slice(b);
            }
            PbValue::I32(b) => {
                key(I32, out);
                out.extend_from_slice(b);
            }
            PbValue::Message(m) => {
                let mut inner = Vec::new();
                encode_fields(m, &mut inner);
                key(LEN, out);
                put_varint(inner.len() as u64, out);
                out.extend_from_slice(&inner);
            }
            PbValue::Bytes(b) => {
                key(LEN, out);
                put_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            PbValue::Raw(b) => out.extend_from_slice(b),
        }
    }
}

/// Where a field sits: indices into nested field lists.
fn field_paths(fields: &[Field], here: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, f) in fields.iter().enumerate() {
        here.push(i);
        out.push(here.clone());
        if let PbValue::Message(m) = &f.value {
            field_paths(m, here, out);
        }
        here.pop();
    }
}

/// The list holding the field at `path`, and its index there.
fn parent_mut<'a>(
    fields: &'a mut Vec<Field>,
    path: &[usize],
) -> Option<(&'a mut Vec<Field>, usize)> {
    let (last, up) = path.split_last()?;
    let mut cur = fields;
    for i in up {
        cur = match &mut cur.get_mut(*i)?.value {
            PbValue::Message(m) => m,
            _ => return None,
        };
    }
    Some((cur, *last))
}

/// Mutates one field of the protobuf message `payload`, at any depth, and re-encodes it with
/// every enclosing length fixed, so the framing stays right and only the field is wrong: a
/// varint set to an extreme, a wire type changed, a length that overruns, a field duplicated,
/// dropped or renumbered, a string made huge or invalid UTF-8, an unknown field appended.
/// Returns the new payload and what was done; `None` when `payload` is not a message.
pub fn mutate_protobuf(payload: &[u8], rng: &mut XorShift64) -> Option<(Vec<u8>, String)> {
    let mut fields = parse(payload, 8)?;
    let mut all = Vec::new();
    field_paths(&fields, &mut Vec::new(), &mut all);
    let what = if all.is_empty() || pick(rng, 8) == 0 {
        let number = 1000 + rng.below_inclusive(1 << 20);
        let mut raw = Vec::new();
        put_varint((number << 3) | u64::from(LEN), &mut raw);
        put_varint(3, &mut raw);
        raw.extend_from_slice(b"\x08\x96\x01");
        fields.push(Field {
            number,
            value: PbValue::Raw(raw),
        });
        format!("appended unknown field {number}")
    } else {
        let path = all[pick(rng, all.len())].clone();
        let (list, i) = parent_mut(&mut fields, &path)?;
        let number = list[i].number;
        let at = format!("field {}", path_names(&path));
        match pick(rng, 8) {
            0 => {
                let v = [u64::MAX, 1 << 63, u64::from(u32::MAX) + 1, 0x8000_0000][pick(rng, 4)];
                list[i].value = PbValue::Varint(v);
                format!("{at} = varint {v}")
            }
            1 => {
                let wt = [VARINT, I64, I32, 3, 4, 6, 7][pick(rng, 7)];
                let mut raw = Vec::new();
                put_varint((number << 3) | u64::from(wt), &mut raw);
                raw.extend_from_slice(&[0x01; 8][..pick(rng, 9)]);
                list[i].value = PbValue::Raw(raw);
                format!("{at} wire type {wt}")
            }
            2 => {
                let mut raw = Vec::new();
                put_varint((number << 3) | u64::from(LEN), &mut raw);
                put_varint(1 << (10 + pick(rng, 22)), &mut raw);
                raw.extend_from_slice(b"short");
                list[i].value = PbValue::Raw(raw);
                format!("{at} length overruns the message")
            }
            3 => {
                let copy = list[i].clone();
                list.insert(i, copy);
                format!("{at} duplicated")
            }
            4 => {
                list.remove(i);
                format!("{at} dropped")
            }
            5 => {
                let to = [1, 2, 3, 15, 16, 2047, 2048, (1 << 29) - 1][pick(rng, 8)];
                list[i].number = to;
                format!("{at} renumbered to {to}")
            }
            6 => {
                let n = 1 << (8 + pick(rng, 10));
                list[i].value = PbValue::Bytes(vec![b'A'; n]);
                format!("{at} = {n} bytes")
            }
            _ => {
                list[i].value = PbValue::Bytes(b"\xff\xfe\xc0\x80 not utf-8".to_vec());
                format!("{at} = invalid UTF-8")
            }
        }
    };
    let mut out = Vec::new();
    encode_fields(&fields, &mut out);
    Some((out, what))
}

fn path_names(path: &[usize]) -> String {
    path.iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_mutation_changes_the_value_and_never_the_kept_keys() {
        for seed in 1..200 {
            let mut rng = XorShift64::new(seed);
            let orig = json!({"execute": "guest-sync", "arguments": {"id": 5}});
            let mut v = orig.clone();
            let what = mutate_json(&mut v, &mut rng, &["execute"]);
            // The root may be replaced as a whole; a kept key is never changed in place.
            let kept = v.get("execute").is_none_or(|e| e == "guest-sync");
            assert!(kept, "{what}: {v}");
            assert!(!what.is_empty());
        }
    }

    #[test]
    fn protobuf_round_trips_and_mutations_keep_a_parsable_frame_length() {
        // message_id "7" (field 1), ping (field 10) { sequence: 7 }.
        let msg = b"\x0a\x017\x52\x02\x08\x07";
        let fields = parse(msg, 8).expect("parses");
        let mut out = Vec::new();
        encode_fields(&fields, &mut out);
        assert_eq!(out, msg);
        let mut changed = 0;
        for seed in 1..300 {
            let mut rng = XorShift64::new(seed);
            let (m, what) = mutate_protobuf(msg, &mut rng).expect("a message");
            assert!(!what.is_empty());
            changed += usize::from(m != msg);
        }
        assert!(changed > 250, "{changed}");
        assert!(mutate_protobuf(b"\x0f\xff", &mut XorShift64::new(1)).is_none());
    }
}
