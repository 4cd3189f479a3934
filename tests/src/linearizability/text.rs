//! A compact, line-oriented text form of a [`History`], so a failed run can
//! be saved (`std::fs::write(path, history.to_string())`) and re-checked
//! later (`std::fs::read_to_string(path)?.parse::<History>()`).
//!
//! One operation per line, whitespace-separated:
//!
//! ```text
//! # <op_id> <client> <key> <invoked_at_ns> <op> <returned_at_ns> <output>
//! 0 1 x 100 put:5 200 put
//! 1 2 x 150 read 300 read:5
//! 2 2 x 310 read 400 read:nil
//! 3 3 x 160 cas:nil:7 indeterminate
//! 4 3 x 170 cas:5:8 250 cas:true
//! 5 1 x 500 delete pending
//! ```
//!
//! Ops: `read`, `put:V`, `cas:E:N` (`E` may be `nil`), `delete`. Outputs:
//! `read:V` / `read:nil`, `put`, `cas:true` / `cas:false`, `delete`; an op
//! without a response ends in `indeterminate` or `pending` instead of
//! `<returned_at_ns> <output>`. Keys are percent-encoded (`%XX`) for bytes
//! outside printable non-space ASCII and for `%`; the empty key is `%`.
//! Blank lines and lines starting with `#` are ignored. Ids need only be
//! unique, so lines can be deleted by hand to shrink a failing history.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::history::{Completion, History, HistoryError, Op, OpId, Operation, Output};

const HEADER: &str = "# <op_id> <client> <key> <invoked_at_ns> <op> <returned_at_ns> <output>";

/// Formats as an op token of the text format (`put:5`, `cas:nil:7`, ...).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Read => f.write_str("read"),
            Op::Put(value) => write!(f, "put:{value}"),
            Op::Cas { expected, new } => write!(f, "cas:{}:{new}", OptionalValue(*expected)),
            Op::Delete => f.write_str("delete"),
        }
    }
}

/// Formats as an output token of the text format (`read:5`, `cas:true`, ...).
impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Read(value) => write!(f, "read:{}", OptionalValue(*value)),
            Output::Put => f.write_str("put"),
            Output::Cas(succeeded) => write!(f, "cas:{succeeded}"),
            Output::Delete => f.write_str("delete"),
        }
    }
}

/// Formats as one line of the text format (without the newline).
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} ",
            self.id(),
            self.client(),
            EncodedKey(self.key()),
            self.invoked_at_ns(),
            self.op()
        )?;
        match self.completion() {
            Completion::Completed {
                returned_at_ns,
                output,
            } => write!(f, "{returned_at_ns} {output}"),
            Completion::Indeterminate => f.write_str("indeterminate"),
            Completion::Pending => f.write_str("pending"),
        }
    }
}

/// Formats the whole history in the text format, one op per line.
impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        for operation in self.operations() {
            writeln!(f, "{operation}")?;
        }
        Ok(())
    }
}

impl FromStr for History {
    type Err = HistoryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut history = History::new();
        for (line_index, line) in text.lines().enumerate() {
            let line_number = line_index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let operation = parse_line(trimmed).map_err(|reason| HistoryError::Parse {
                line_number,
                reason,
            })?;
            history
                .insert(operation)
                .map_err(|error| HistoryError::InvalidLine {
                    line_number,
                    error: Box::new(error),
                })?;
        }
        Ok(history)
    }
}

struct OptionalValue(Option<u64>);

impl fmt::Display for OptionalValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value}"),
            None => f.write_str("nil"),
        }
    }
}

struct EncodedKey<'a>(&'a str);

impl fmt::Display for EncodedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_char('%');
        }
        for byte in self.0.bytes() {
            if byte.is_ascii_graphic() && byte != b'%' {
                f.write_char(char::from(byte))?;
            } else {
                write!(f, "%{byte:02X}")?;
            }
        }
        Ok(())
    }
}

fn parse_line(line: &str) -> Result<Operation, String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let (head, completion) = match tokens.as_slice() {
        [head @ .., "indeterminate"] if head.len() == 5 => (head, Completion::Indeterminate),
        [head @ .., "pending"] if head.len() == 5 => (head, Completion::Pending),
        [head @ .., returned, output] if head.len() == 5 => (
            head,
            Completion::Completed {
                returned_at_ns: parse_number(returned, "returned_at_ns")?,
                output: parse_output(output)?,
            },
        ),
        _ => {
            return Err(format!(
                "expected 6 or 7 fields (`{}`), found {}",
                HEADER.trim_start_matches("# "),
                tokens.len()
            ));
        }
    };
    let [id, client, key, invoked, op] = head else {
        return Err("expected 5 leading fields".to_owned());
    };
    Ok(Operation::new(
        OpId::new(parse_number(id, "op_id")?),
        parse_number(client, "client")?,
        decode_key(key)?,
        parse_op(op)?,
        parse_number(invoked, "invoked_at_ns")?,
        completion,
    ))
}

fn parse_number(token: &str, field: &str) -> Result<u64, String> {
    token
        .parse()
        .map_err(|_| format!("{field} `{token}` is not an unsigned integer"))
}

fn parse_optional_value(token: &str) -> Result<Option<u64>, String> {
    match token {
        "nil" => Ok(None),
        _ => parse_number(token, "value").map(Some),
    }
}

fn parse_op(token: &str) -> Result<Op, String> {
    let parts: Vec<&str> = token.split(':').collect();
    match parts.as_slice() {
        ["read"] => Ok(Op::Read),
        ["put", value] => Ok(Op::Put(parse_number(value, "value")?)),
        ["cas", expected, new] => Ok(Op::Cas {
            expected: parse_optional_value(expected)?,
            new: parse_number(new, "value")?,
        }),
        ["delete"] => Ok(Op::Delete),
        _ => Err(format!(
            "op `{token}` is not one of read, put:V, cas:E:N, delete"
        )),
    }
}

fn parse_output(token: &str) -> Result<Output, String> {
    let parts: Vec<&str> = token.split(':').collect();
    match parts.as_slice() {
        ["read", value] => Ok(Output::Read(parse_optional_value(value)?)),
        ["put"] => Ok(Output::Put),
        ["cas", "true"] => Ok(Output::Cas(true)),
        ["cas", "false"] => Ok(Output::Cas(false)),
        ["delete"] => Ok(Output::Delete),
        _ => Err(format!(
            "output `{token}` is not one of read:V, put, cas:true, cas:false, delete"
        )),
    }
}

fn decode_key(token: &str) -> Result<String, String> {
    if token == "%" {
        return Ok(String::new());
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail
                .get(..2)
                .filter(|digits| digits.iter().all(u8::is_ascii_hexdigit))
                .and_then(|digits| std::str::from_utf8(digits).ok())
                .and_then(|digits| u8::from_str_radix(digits, 16).ok())
                .ok_or_else(|| format!("key `{token}` has a malformed %XX escape"))?;
            bytes.push(hex);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("key `{token}` does not decode to UTF-8"))
}
