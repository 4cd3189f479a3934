//! A log-linear latency histogram in the style of HdrHistogram: 64 linear sub-buckets per power
//! of two, so any recorded value is reported within 1/64 (1.6 %) of what was measured.

use std::time::Duration;

/// Values below this are counted exactly (one bucket per nanosecond).
const LINEAR_MAX: u64 = 128;
/// Sub-buckets per power of two above `LINEAR_MAX`.
const SUB_BUCKETS: u64 = 64;
/// Enough buckets for any `u64` nanosecond value.
const BUCKETS: usize = 57 * SUB_BUCKETS as usize + LINEAR_MAX as usize;

/// Latencies in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(value_ns: u64) -> usize {
    if value_ns < LINEAR_MAX {
        return value_ns as usize;
    }
    let msb = 63 - u64::from(value_ns.leading_zeros());
    let shift = msb - 6;
    (shift * SUB_BUCKETS + (value_ns >> shift)) as usize
}

/// The lowest value that lands in `bucket`, and the width of the bucket.
fn bucket_range(bucket: usize) -> (u64, u64) {
    let b = bucket as u64;
    if b < LINEAR_MAX {
        return (b, 1);
    }
    let shift = b / SUB_BUCKETS - 1;
    let mantissa = b % SUB_BUCKETS + SUB_BUCKETS;
    (mantissa << shift, 1 << shift)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_ns(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn record_ns(&mut self, value_ns: u64) {
        self.counts[bucket_of(value_ns)] += 1;
        self.count += 1;
        self.sum_ns += u128::from(value_ns);
        self.min_ns = self.min_ns.min(value_ns);
        self.max_ns = self.max_ns.max(value_ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min_ns(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min_ns }
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    pub fn mean_ns(&self) -> u64 {
        if self.count == 0 {
            return 0;
        }
        u64::try_from(self.sum_ns / u128::from(self.count)).unwrap_or(u64::MAX)
    }

    /// The value at `quantile` (0.0..=1.0): the middle of the bucket that holds the
    /// ceil(quantile * count)-th smallest value, clamped to the exact minimum and maximum.
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = quantile.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == 1 {
            return self.min_ns;
        }
        if rank == self.count {
            return self.max_ns;
        }
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_range(bucket);
                let mid = low + (width - 1) / 2;
                return mid.clamp(self.min_ns, self.max_ns);
            }
        }
        self.max_ns
    }

    /// Counts between geometrically spaced bounds from the fastest to the slowest value:
    /// `(upper_bound_ns, count)` per row, `rows` rows at most.
    pub fn coarse(&self, rows: usize) -> Vec<(u64, u64)> {
        if self.count == 0 || rows == 0 {
            return Vec::new();
        }
        let low = self.min_ns().max(1) as f64;
        let high = (self.max_ns.max(1) as f64).max(low * 1.0001);
        let ratio = (high / low).powf(1.0 / rows as f64);
        let mut bounds: Vec<u64> = (1..=rows)
            .map(|i| (low * ratio.powi(i as i32)).ceil() as u64)
            .collect();
        if let Some(last) = bounds.last_mut() {
            *last = self.max_ns;
        }
        let mut out: Vec<(u64, u64)> = bounds.iter().map(|&b| (b, 0)).collect();
        for (bucket, &n) in self.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (start, _) = bucket_range(bucket);
            let row = bounds.iter().position(|&b| start <= b).unwrap_or(rows - 1);
            out[row].1 += n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut previous_end = 0;
        for bucket in 0..BUCKETS {
            let (low, width) = bucket_range(bucket);
            assert_eq!(low, previous_end, "bucket {bucket}");
            assert_eq!(bucket_of(low), bucket);
            assert_eq!(bucket_of(low + (width - 1)), bucket);
            previous_end = low.saturating_add(width);
            if previous_end == u64::MAX || low.checked_add(width).is_none() {
                break;
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn relative_error_is_below_two_percent() {
        for value in [200u64, 1_000, 12_345, 999_999, 123_456_789, 10_000_000_000] {
            let (low, width) = bucket_range(bucket_of(value));
            assert!(width as f64 / low as f64 <= 1.0 / 64.0 + 1e-9, "{value}");
        }
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record_ns(v * 1_000);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.min_ns(), 1_000);
        assert_eq!(h.max_ns(), 10_000_000);
        assert_eq!(h.mean_ns(), 5_000_500);
        for (q, exact) in [(0.5, 5_000_000f64), (0.9, 9_000_000.0), (0.99, 9_900_000.0)] {
            let got = h.quantile_ns(q) as f64;
            assert!(
                (got - exact).abs() / exact < 0.016,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile_ns(1.0), 10_000_000);
        assert_eq!(h.quantile_ns(0.0), 1_000);
    }

    #[test]
    fn one_slow_outlier_shows_at_p999_but_not_p99() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(Duration::from_millis(1));
        }
        h.record(Duration::from_secs(2));
        assert!(h.quantile_ns(0.99) < 1_020_000);
        assert!(h.quantile_ns(0.999) < 1_020_000);
        assert_eq!(h.quantile_ns(0.9999), 2_000_000_000);
        assert_eq!(h.max_ns(), 2_000_000_000);
    }

    #[test]
    fn merge_adds_counts_and_extremes() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record_ns(10);
        b.record_ns(1_000_000);
        b.record_ns(500);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.min_ns(), 10);
        assert_eq!(a.max_ns(), 1_000_000);
        assert!((496..=504).contains(&a.quantile_ns(0.5)));
        let rows = a.coarse(5);
        assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 3);
        assert_eq!(rows.last().map(|r| r.0), Some(1_000_000));
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let h = Histogram::new();
        assert_eq!(h.quantile_ns(0.99), 0);
        assert_eq!(h.mean_ns(), 0);
        assert_eq!(h.min_ns(), 0);
        assert!(h.coarse(10).is_empty());
    }
}
