//! `tally-bench`: a load generator for etcd's v3 gRPC API, in the manner of etcd's
//! `tools/benchmark`, so the same run can be pointed at etcd and at tally.
//!
//! Threads: `--threads` workers (default: one per core, at most one per connection), each
//! driving its share of the `--conns` h2 connections from one mio poll; every connection
//! carries its share of the `--clients`, each client with one call in flight. No async
//! runtime: h2's futures are polled by hand with a no-op waker whenever their socket is ready.

pub mod check;
pub mod engine;
pub mod flags;
pub mod hist;
pub mod io;
pub mod report;
pub mod watch;
pub mod workload;

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use engine::{ConnSpec, Shared, Stats};
use flags::{Command, Config, Stop};
use report::Report;
use workload::Workload;

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Which connection specs each worker thread drives.
fn plan(config: &Config) -> Vec<Vec<ConnSpec>> {
    let conns = config.conns;
    let mut specs: Vec<ConnSpec> = (0..conns)
        .map(|i| ConnSpec {
            endpoint: config.endpoints[i % config.endpoints.len()].clone(),
            clients: Vec::new(),
            watch_streams: Vec::new(),
            rate_per_conn: config.rate / conns as f64,
        })
        .collect();
    if config.command == Command::Watch {
        for s in 0..config.streams {
            let watchers = config.watchers / config.streams
                + usize::from(s < config.watchers % config.streams);
            specs[s % conns].watch_streams.push(watchers);
        }
        for spec in &mut specs {
            spec.rate_per_conn = 0.0;
        }
    } else {
        for c in 0..config.clients {
            specs[c % conns].clients.push(c as u64);
        }
    }
    let mut threads: Vec<Vec<ConnSpec>> = vec![Vec::new(); config.threads];
    for (i, spec) in specs.into_iter().enumerate() {
        threads[i % config.threads].push(spec);
    }
    threads
}

fn spawn(
    specs: Vec<ConnSpec>,
    tls: &io::Tls,
    shared: &Arc<Shared>,
    workload: &Arc<Workload>,
    barrier: &Arc<Barrier>,
) -> std::thread::JoinHandle<Stats> {
    let (tls, shared, workload, barrier) = (
        tls.clone(),
        Arc::clone(shared),
        Arc::clone(workload),
        Arc::clone(barrier),
    );
    std::thread::spawn(move || engine::run_worker(specs, tls, shared, workload, barrier))
}

fn progress_line(config: &Config, shared: &Shared, started: Instant) -> String {
    let done = shared.completed.load(Ordering::Relaxed);
    let errors = shared.errors.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let of = match config.stop {
        Stop::Total(total) => format!(
            "{done}/{total} ({:.0}%)",
            done as f64 * 100.0 / total as f64
        ),
        Stop::Duration(d) => format!("{done} ({secs:.0}/{:.0} s)", d.as_secs_f64()),
    };
    format!(
        "\r{} {of}  {rate:.0}/s  {errors} errors   ",
        config.command.name()
    )
}

/// Runs the benchmark `config` describes and returns its report.
pub fn run(config: &Config) -> Result<Report, String> {
    engine::set_token(config.token.clone());
    let tls = io::Tls::from_flags(config.tls.as_ref())?;
    let epoch = Instant::now();
    let (total, duration) = match config.stop {
        Stop::Total(n) => (Some(n), None),
        Stop::Duration(d) => (None, Some(d)),
    };
    let gate = if config.command == Command::Watch {
        config.watchers as u64
    } else {
        0
    };
    let shared = Arc::new(Shared::new(total, duration, gate, epoch));
    let workload = Arc::new(Workload::new(config, epoch));
    let plans = plan(config);
    let writer = config.command == Command::Watch;
    let barrier = Arc::new(Barrier::new(plans.len() + 1 + usize::from(writer)));
    let workers: Vec<_> = plans
        .into_iter()
        .map(|specs| spawn(specs, &tls, &shared, &workload, &barrier))
        .collect();
    let writer = writer.then(|| {
        let spec = ConnSpec {
            endpoint: config.endpoints[0].clone(),
            clients: vec![u64::MAX],
            watch_streams: Vec::new(),
            rate_per_conn: config.rate,
        };
        spawn(vec![spec], &tls, &shared, &workload, &barrier)
    });
    barrier.wait();
    let started = Instant::now();
    shared.start(started);
    let mut stderr = std::io::stderr();
    let mut writer_stats = None;
    let mut writer = writer;
    loop {
        if let Some(handle) = writer.take_if(|h| h.is_finished()) {
            let stats = handle.join().map_err(|_| "the watch writer panicked")?;
            shared.puts_acked.store(stats.ok, Ordering::Release);
            shared.writer_done.store(true, Ordering::Release);
            writer_stats = Some(stats);
        }
        if writer.is_none() && workers.iter().all(|w| w.is_finished()) {
            break;
        }
        if config.progress {
            let _ = write!(stderr, "{}", progress_line(config, &shared, started));
        }
        std::thread::sleep(PROGRESS_EVERY);
    }
    if config.progress {
        let _ = writeln!(stderr, "{}", progress_line(config, &shared, started));
    }
    let mut stats = Stats::default();
    for worker in workers {
        stats.merge(worker.join().map_err(|_| "a worker panicked")?);
    }
    let mut writer_latency = None;
    if let Some(w) = writer_stats {
        for (what, n) in &w.errors {
            *stats.errors.entry(format!("writer: {what}")).or_insert(0) += n;
        }
        stats.regressions += w.regressions;
        stats.finished_at = stats.finished_at.max(w.finished_at);
        writer_latency = Some(w.latency);
    }
    let elapsed = match config.stop {
        Stop::Duration(d) if config.command != Command::Watch => {
            d.max(stats.finished_at.map_or(d, |f| f - started))
        }
        _ => stats
            .finished_at
            .map_or(started.elapsed(), |f| f.saturating_duration_since(started)),
    };
    Ok(Report {
        command: config.command,
        elapsed,
        ok: stats.ok + stats.conflicts,
        conflicts: stats.conflicts,
        latency: stats.latency,
        errors: stats.errors,
        regressions: stats.regressions,
        writer: writer_latency,
    })
}
