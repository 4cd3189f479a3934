//! The command line as given: each flag's last value, and the ignored flags, read back one
//! flag at a time as the type it holds.

use super::compaction::parse_go_duration;
use super::error::FlagError;
use super::table::{IGNORED_FLAGS, KNOWN_FLAGS, UNSUPPORTED_FLAGS};
use super::url::Url;

/// Flag values by name (without the dashes); a flag given twice keeps its last value.
#[derive(Default)]
pub(super) struct Raw {
    values: Vec<(String, String)>,
    ignored: Vec<(String, &'static str)>,
}

impl Raw {
    pub(super) fn set(&mut self, name: &str, value: String) -> Result<(), FlagError> {
        if let Some((_, why)) = UNSUPPORTED_FLAGS.iter().find(|(n, _)| *n == name) {
            if value.is_empty() || value == "false" {
                // It asks for nothing (etcd's default).
                return Ok(());
            }
            return Err(FlagError::Unsupported {
                flag: format!("--{name}"),
                why,
            });
        }
        if let Some((_, why)) = IGNORED_FLAGS.iter().find(|(n, _)| *n == name) {
            self.ignored.retain(|(n, _)| n != name);
            self.ignored.push((name.to_string(), why));
            return Ok(());
        }
        if !KNOWN_FLAGS.contains(&name) {
            return Err(FlagError::Unknown(format!("--{name}")));
        }
        self.values.retain(|(n, _)| n != name);
        self.values.push((name.to_string(), value));
        Ok(())
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The ignored flags given, each with why ignoring it is safe.
    pub(super) fn ignored(&self) -> &[(String, &'static str)] {
        &self.ignored
    }

    pub(super) fn number<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
    ) -> Result<T, FlagError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|_| FlagError::BadValue {
                flag: format!("--{name}"),
                value: value.to_string(),
            }),
        }
    }

    /// A Go duration (`5s`, `2h`, `1m30s`, `0`), as etcd's `time.Duration` flags take, in
    /// milliseconds rounded up (so `1ns` is not zero).
    pub(super) fn duration_ms(&self, name: &str, default_ms: u64) -> Result<u64, FlagError> {
        let text = match self.get(name) {
            None => return Ok(default_ms),
            Some("0") => return Ok(0),
            Some(text) => text,
        };
        let duration = parse_go_duration(text).ok_or_else(|| FlagError::BadValue {
            flag: format!("--{name}"),
            value: text.to_string(),
        })?;
        let ms = duration.as_nanos().div_ceil(1_000_000);
        Ok(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub(super) fn boolean(&self, name: &str) -> Result<bool, FlagError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(FlagError::BadValue {
                flag: format!("--{name}"),
                value: other.to_string(),
            }),
        }
    }

    /// A comma-separated URL list.
    pub(super) fn urls(&self, name: &str, default: &[Url]) -> Result<Vec<Url>, FlagError> {
        match self.get(name) {
            None => Ok(default.to_vec()),
            Some(text) => text
                .split(',')
                .filter(|s| !s.is_empty())
                .map(Url::parse)
                .collect(),
        }
    }
}
