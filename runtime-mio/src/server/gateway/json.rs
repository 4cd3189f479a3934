//! JSON to protobuf wire bytes and back, for the messages in `super::schema`, the way etcd's
//! gateway (grpc-gateway's jsonpb, with proto field names) does it:
//!
//! - 64-bit integers are written as JSON strings and read from strings or numbers;
//! - bytes are base64 (standard or URL-safe, padded or not, on the way in);
//! - enums are written by name and read by name or number;
//! - a field is read by its proto name (`range_end`, `ID`) or its lowerCamel JSON name
//!   (`rangeEnd`); unknown fields and `null`s are ignored, as etcd ignores them;
//! - fields are written in field-number order, and only when present on the wire, which for
//!   prost messages means only when not the default (jsonpb's `EmitDefaults: false`).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

use super::schema::{Field, Kind, Message};

/// Messages nest (a txn in a txn); past this, a request or response is refused.
const DEPTH_MAX: usize = 32;

/// Why a JSON request or a wire message could not be transcoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(super) enum TranscodeError {
    /// The body is not JSON (serde_json's message).
    Syntax(String),
    /// A message is not a JSON object, or a repeated field not an array.
    Shape(&'static str),
    /// A field's value does not fit its type.
    Value {
        field: &'static str,
        why: &'static str,
    },
    TooDeep,
    /// The wire bytes are not a valid message (a response of ours: a bug).
    Wire(&'static str),
}

impl std::fmt::Display for TranscodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax(e) => write!(f, "{e}"),
            Self::Shape(what) => write!(f, "json: {what}"),
            Self::Value { field, why } => write!(f, "json: field {field:?}: {why}"),
            Self::TooDeep => write!(f, "json: messages nested over {DEPTH_MAX} deep"),
            Self::Wire(why) => write!(f, "protobuf: {why}"),
        }
    }
}

/// The request `body` (JSON; empty means `{}`) as `message`'s wire bytes.
pub(super) fn to_proto(message: &Message, body: &[u8]) -> Result<Vec<u8>, TranscodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| TranscodeError::Syntax(e.to_string()))?;
    let mut out = Vec::new();
    encode_message(message, &value, &mut out, 0)?;
    Ok(out)
}

/// Requests of a stream (a watch's creates and cancels) that one body may carry, one JSON
/// object after another, as etcd's gateway reads a streamed body.
pub(super) const STREAM_REQUESTS_MAX: usize = 64;

/// Every JSON object in `body`, in order, as `message`'s wire bytes (none for an empty body).
pub(super) fn to_protos(message: &Message, body: &[u8]) -> Result<Vec<Vec<u8>>, TranscodeError> {
    let mut messages = Vec::new();
    for value in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        let value = value.map_err(|e| TranscodeError::Syntax(e.to_string()))?;
        if messages.len() == STREAM_REQUESTS_MAX {
            return Err(TranscodeError::Shape(
                "too many requests in one stream body",
            ));
        }
        let mut out = Vec::new();
        encode_message(message, &value, &mut out, 0)?;
        messages.push(out);
    }
    Ok(messages)
}

/// `wire`, a `message`, as JSON text.
pub(super) fn to_json(message: &Message, wire: &[u8]) -> Result<String, TranscodeError> {
    let mut out = String::new();
    write_message(message, wire, &mut out, 0)?;
    Ok(out)
}

fn matches_name(field: &Field, key: &str) -> bool {
    if field.name == key {
        return true;
    }
    // lowerCamel: `range_end` is also `rangeEnd`.
    let mut camel = field.name.split('_');
    let first = camel.next().unwrap_or_default();
    let mut rest = key.strip_prefix(first);
    for part in camel {
        let mut chars = part.chars();
        let Some(initial) = chars.next() else {
            return false;
        };
        rest = rest
            .and_then(|r| r.strip_prefix(initial.to_ascii_uppercase()))
            .and_then(|r| r.strip_prefix(chars.as_str()));
    }
    rest == Some("")
}

fn encode_message(
    message: &Message,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), TranscodeError> {
    if depth > DEPTH_MAX {
        return Err(TranscodeError::TooDeep);
    }
    let object = match value {
        Value::Object(object) => object,
        Value::Null => return Ok(()),
        _ => return Err(TranscodeError::Shape("a message must be a JSON object")),
    };
    for (key, value) in object {
        let Some(field) = message.fields.iter().find(|f| matches_name(f, key)) else {
            continue;
        };
        match value {
            Value::Null => {}
            Value::Array(items) if field.repeated => {
                for item in items {
                    encode_value(field, item, out, depth)?;
                }
            }
            _ if field.repeated => {
                return Err(TranscodeError::Shape(
                    "a repeated field must be a JSON array",
                ));
            }
            _ => encode_value(field, value, out, depth)?,
        }
    }
    Ok(())
}

fn encode_value(
    field: &'static Field,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), TranscodeError> {
    let bad = |why| TranscodeError::Value {
        field: field.name,
        why,
    };
    let varint = |out: &mut Vec<u8>, v: u64| {
        put_varint(out, u64::from(field.number) << 3);
        put_varint(out, v);
    };
    match &field.kind {
        Kind::Int64 => varint(
            out,
            int64(value).ok_or_else(|| bad("not a 64-bit integer"))? as u64,
        ),
        Kind::Uint64 => varint(
            out,
            uint64(value).ok_or_else(|| bad("not an unsigned integer"))?,
        ),
        Kind::Uint32 => {
            let v = uint64(value).filter(|v| u32::try_from(*v).is_ok());
            varint(out, v.ok_or_else(|| bad("not a 32-bit unsigned integer"))?)
        }
        Kind::Bool => varint(
            out,
            u64::from(value.as_bool().ok_or_else(|| bad("not a boolean"))?),
        ),
        Kind::Enum(names) => {
            let number = match value {
                Value::String(name) => names.iter().position(|n| n == name).map(|i| i as i64),
                _ => int64(value).filter(|v| i32::try_from(*v).is_ok()),
            };
            varint(
                out,
                number.ok_or_else(|| bad("not a value of the enum"))? as u64,
            )
        }
        Kind::Bytes => {
            let text = value
                .as_str()
                .ok_or_else(|| bad("bytes must be a base64 string"))?;
            let bytes = base64_decode(text).ok_or_else(|| bad("not base64"))?;
            put_delimited(out, field.number, &bytes);
        }
        Kind::Str => {
            let text = value.as_str().ok_or_else(|| bad("not a string"))?;
            put_delimited(out, field.number, text.as_bytes());
        }
        Kind::Message(inner) => {
            let mut nested = Vec::new();
            encode_message(inner, value, &mut nested, depth + 1)?;
            put_delimited(out, field.number, &nested);
        }
    }
    Ok(())
}

fn int64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| whole(n.as_f64()?)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn uint64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| whole(n.as_f64()?).and_then(|v| u64::try_from(v).ok())),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A float that is a whole number in i64's range (JSON has only numbers: `1e3` is 1000).
fn whole(f: f64) -> Option<i64> {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_delimited(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A field's value on the wire.
enum WireValue<'a> {
    Varint(u64),
    Delimited(&'a [u8]),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, TranscodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .bytes
                .split_first()
                .ok_or(TranscodeError::Wire("truncated varint"))?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(TranscodeError::Wire("varint over 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TranscodeError> {
        if n > self.bytes.len() {
            return Err(TranscodeError::Wire("truncated field"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field's number and value; fixed-width values (unused by etcd's messages) are
    /// skipped and come back as `None`.
    fn field(&mut self) -> Result<(u32, Option<WireValue<'a>>), TranscodeError> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| TranscodeError::Wire("field number"))?;
        let value = match key & 7 {
            0 => Some(WireValue::Varint(self.varint()?)),
            1 => self.take(8).map(|_| None)?,
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| TranscodeError::Wire("length"))?;
                Some(WireValue::Delimited(self.take(len)?))
            }
            5 => self.take(4).map(|_| None)?,
            _ => return Err(TranscodeError::Wire("unsupported wire type")),
        };
        Ok((number, value))
    }
}

fn write_message(
    message: &Message,
    wire: &[u8],
    out: &mut String,
    depth: usize,
) -> Result<(), TranscodeError> {
    if depth > DEPTH_MAX {
        return Err(TranscodeError::TooDeep);
    }
    // Each field's JSON values, in wire order: repeated fields keep them all, others the last.
    let mut values: Vec<Vec<String>> = vec![Vec::new(); message.fields.len()];
    let mut reader = Reader { bytes: wire };
    while !reader.bytes.is_empty() {
        let (number, value) = reader.field()?;
        let (Some((index, field)), Some(value)) = (message.field(number), value) else {
            continue;
        };
        let delimited_kind = matches!(field.kind, Kind::Bytes | Kind::Str | Kind::Message(_));
        if matches!(value, WireValue::Varint(_)) && delimited_kind {
            continue; // the wrong wire type: skipped as an unknown field would be
        }
        let slot = &mut values[index];
        if !field.repeated {
            slot.clear();
        }
        match value {
            // Packed repeated scalars.
            WireValue::Delimited(packed) if field.repeated && !delimited_kind => {
                let mut inner = Reader { bytes: packed };
                while !inner.bytes.is_empty() {
                    slot.push(scalar_json(field, inner.varint()?));
                }
            }
            WireValue::Delimited(bytes) => slot.push(delimited_json(field, bytes, depth)?),
            WireValue::Varint(v) => slot.push(scalar_json(field, v)),
        }
    }
    out.push('{');
    let mut first = true;
    for (field, json) in message.fields.iter().zip(&values) {
        if json.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "\"{}\":", field.name);
        if field.repeated {
            out.push('[');
            out.push_str(&json.join(","));
            out.push(']');
        } else {
            out.push_str(&json[0]);
        }
    }
    out.push('}');
    Ok(())
}

fn scalar_json(field: &Field, v: u64) -> String {
    match &field.kind {
        Kind::Int64 => format!("\"{}\"", v as i64),
        Kind::Uint64 => format!("\"{v}\""),
        Kind::Uint32 => (v as u32).to_string(),
        Kind::Bool => (v != 0).to_string(),
        Kind::Enum(names) => match names.get(v as usize) {
            Some(name) => format!("\"{name}\""),
            None => (v as i32).to_string(),
        },
        Kind::Bytes | Kind::Str | Kind::Message(_) => {
            unreachable!("write_message skips varints of length-delimited fields")
        }
    }
}

fn delimited_json(field: &Field, bytes: &[u8], depth: usize) -> Result<String, TranscodeError> {
    Ok(match &field.kind {
        Kind::Bytes => format!("\"{}\"", STANDARD.encode(bytes)),
        Kind::Str => serde_json::to_string(&String::from_utf8_lossy(bytes))
            .map_err(|_| TranscodeError::Wire("string"))?,
        Kind::Message(inner) => {
            let mut nested = String::new();
            write_message(inner, bytes, &mut nested, depth + 1)?;
            nested
        }
        _ => return Err(TranscodeError::Wire("length-delimited scalar")),
    })
}

#[cfg(test)]
mod tests;
