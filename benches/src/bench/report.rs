//! The summary printed at the end of a run, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::flags::Command;
use super::hist::Histogram;

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    pub command: Command,
    pub elapsed: Duration,
    pub latency: Histogram,
    /// Successful counted calls (for watch: events delivered).
    pub ok: u64,
    /// Failed compares of txn-put (included in `ok`).
    pub conflicts: u64,
    pub errors: BTreeMap<String, u64>,
    pub regressions: u64,
    /// The watch workload's writer: its put latencies.
    pub writer: Option<Histogram>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    fn latency_json(h: &Histogram) -> String {
        let mut out = format!(
            "{{\"average\": {:.3}, \"fastest\": {:.3}",
            ms(h.mean_ns()),
            ms(h.min_ns())
        );
        for (name, q) in QUANTILES {
            let _ = write!(out, ", \"{name}\": {:.3}", ms(h.quantile_ns(q)));
        }
        let _ = write!(out, ", \"slowest\": {:.3}}}", ms(h.max_ns()));
        out
    }

    pub fn json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(
            out,
            "\"command\": {}, \"ok\": {}, \"errors\": {}, \"revision_regressions\": {}, \
             \"txn_conflicts\": {}, \"elapsed_s\": {:.3}, \"requests_per_s\": {:.1}, \
             \"latency_ms\": {}",
            json_string(self.command.name()),
            self.ok,
            self.error_count(),
            self.regressions,
            self.conflicts,
            self.elapsed.as_secs_f64(),
            self.requests_per_sec(),
            Self::latency_json(&self.latency)
        );
        if let Some(writer) = &self.writer {
            let _ = write!(
                out,
                ", \"writer_latency_ms\": {}",
                Self::latency_json(writer)
            );
        }
        out.push_str(", \"histogram_ms\": [");
        for (i, (upper, n)) in self.latency.coarse(12).iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}[{:.3}, {n}]", ms(*upper));
        }
        out.push_str("], \"error_messages\": {");
        for (i, (what, n)) in self.errors.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}{}: {n}", json_string(what));
        }
        out.push_str("}}");
        out
    }

    pub fn text(&self) -> String {
        let h = &self.latency;
        let unit = if self.command == Command::Watch {
            "events"
        } else {
            "requests"
        };
        let mut out = String::from("\nSummary:\n");
        let _ = writeln!(out, "  Total:\t{:.4} secs.", self.elapsed.as_secs_f64());
        let _ = writeln!(out, "  Slowest:\t{:.4} ms.", ms(h.max_ns()));
        let _ = writeln!(out, "  Fastest:\t{:.4} ms.", ms(h.min_ns()));
        let _ = writeln!(out, "  Average:\t{:.4} ms.", ms(h.mean_ns()));
        for (name, q) in QUANTILES {
            let _ = writeln!(out, "  {name}:\t{:.4} ms.", ms(h.quantile_ns(q)));
        }
        let _ = writeln!(out, "  {unit}/sec:\t{:.2}", self.requests_per_sec());
        let _ = writeln!(out, "  OK:\t{} {unit}", self.ok);
        if self.command == Command::TxnPut {
            let _ = writeln!(
                out,
                "  Conflicts:\t{} (compare failed; counted in OK)",
                self.conflicts
            );
        }
        let _ = writeln!(out, "  Errors:\t{}", self.error_count());
        let _ = writeln!(out, "  Revision regressions:\t{}", self.regressions);
        if let Some(w) = &self.writer {
            let _ = writeln!(
                out,
                "  Writer puts:\t{} (p99 {:.4} ms, slowest {:.4} ms)",
                w.count(),
                ms(w.quantile_ns(0.99)),
                ms(w.max_ns())
            );
        }
        let rows = h.coarse(12);
        if !rows.is_empty() {
            out.push_str("\nResponse time histogram:\n");
            let peak = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
            for (upper, n) in rows {
                let bar = "∎".repeat((n * 40).div_ceil(peak) as usize);
                let _ = writeln!(out, "  {:>10.4} [{n:>8}]\t|{bar}", ms(upper));
            }
        }
        if !self.errors.is_empty() {
            out.push_str("\nError distribution:\n");
            for (what, n) in &self.errors {
                let _ = writeln!(out, "  [{n}]\t{what}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_figures_and_escapes_messages() {
        let mut latency = Histogram::new();
        for v in 1..=100 {
            latency.record(Duration::from_millis(v));
        }
        let mut errors = BTreeMap::new();
        errors.insert("grpc-status 14: \"unavailable\"".to_string(), 2);
        let report = Report {
            command: Command::Put,
            elapsed: Duration::from_secs(2),
            latency,
            ok: 100,
            conflicts: 0,
            errors,
            regressions: 0,
            writer: None,
        };
        let json = report.json();
        assert!(json.contains("\"ok\": 100"), "{json}");
        assert!(json.contains("\"errors\": 2"), "{json}");
        assert!(json.contains("\"requests_per_s\": 50.0"), "{json}");
        assert!(json.contains("\"p99\": "), "{json}");
        assert!(json.contains("\\\"unavailable\\\""), "{json}");
        let text = report.text();
        assert!(text.contains("requests/sec:\t50.00"), "{text}");
        assert!(text.contains("Error distribution"), "{text}");
    }
}
