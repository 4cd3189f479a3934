//! `--auto-compaction-mode` and `--auto-compaction-retention`, read as etcd reads them.

use std::time::Duration;

/// What `--auto-compaction-mode` and `--auto-compaction-retention` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompactionConfig {
    Off,
    /// Keep this much time of history.
    Periodic(Duration),
    /// Keep this many revisions of history.
    Revision(u64),
}

impl AutoCompactionConfig {
    /// Reads etcd's two flags: in periodic mode a bare integer is hours, else a Go duration
    /// ("30m", "1h30m", "90s", "1.5h"); in revision mode an integer of revisions. A zero
    /// retention turns auto-compaction off, as in etcd. `Err` names the value refused.
    pub fn parse(mode: &str, retention: &str) -> Result<Self, String> {
        let config = match mode {
            "periodic" => match retention.parse::<u64>() {
                Ok(hours) => Duration::from_secs(hours.saturating_mul(3600)),
                Err(_) => parse_go_duration(retention).ok_or_else(|| retention.to_string())?,
            },
            "revision" => {
                let revisions: u64 = retention.parse().map_err(|_| retention.to_string())?;
                return Ok(match revisions {
                    0 => AutoCompactionConfig::Off,
                    n => AutoCompactionConfig::Revision(n),
                });
            }
            other => return Err(other.to_string()),
        };
        Ok(if config.is_zero() {
            AutoCompactionConfig::Off
        } else {
            AutoCompactionConfig::Periodic(config)
        })
    }
}

/// A Go `time.ParseDuration` string of non-negative parts: a decimal number, then one of
/// `ns us µs ms s m h`, repeated ("1h30m", "1.5h", "250ms").
pub(in crate::server) fn parse_go_duration(text: &str) -> Option<Duration> {
    const UNITS: &[(&str, f64)] = &[
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut seconds = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        // Longest unit first: "ms" before "m".
        let (unit, scale) = UNITS
            .iter()
            .filter(|(unit, _)| rest.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())?;
        rest = &rest[unit.len()..];
        seconds += number * scale;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_parse_as_etcds_flags_do() {
        let parse = AutoCompactionConfig::parse;
        let periodic = |secs: u64| Ok(AutoCompactionConfig::Periodic(Duration::from_secs(secs)));
        assert_eq!(
            parse("periodic", "1"),
            periodic(3600),
            "a bare integer is hours"
        );
        assert_eq!(parse("periodic", "30m"), periodic(1800));
        assert_eq!(parse("periodic", "1h30m"), periodic(5400));
        assert_eq!(parse("periodic", "1.5h"), periodic(5400));
        assert_eq!(parse("periodic", "2s"), periodic(2));
        assert_eq!(
            parse("periodic", "250ms"),
            Ok(AutoCompactionConfig::Periodic(Duration::from_millis(250)))
        );
        assert_eq!(parse("periodic", "0"), Ok(AutoCompactionConfig::Off));
        assert_eq!(parse("periodic", "0s"), Ok(AutoCompactionConfig::Off));
        assert_eq!(
            parse("revision", "1000"),
            Ok(AutoCompactionConfig::Revision(1000))
        );
        assert_eq!(parse("revision", "0"), Ok(AutoCompactionConfig::Off));
        for (mode, bad) in [
            ("periodic", "1x"),
            ("periodic", "h"),
            ("periodic", "-1h"),
            ("periodic", ""),
            ("revision", "1h"),
            ("revision", "-5"),
            ("daily", "1"),
        ] {
            assert!(parse(mode, bad).is_err(), "{mode} {bad}");
        }
    }
}
