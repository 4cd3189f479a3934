//! `grpc-noop`: a gRPC server that answers every unary call at once with an empty message and
//! status OK, and does nothing else: no Raft, no WAL, no store. Run against it, a client's
//! figures show the client's own ceiling on this machine: `benches/check-perf-ceiling.sh` runs
//! `etcdctl check perf` against three of them to tell how much of a check perf shortfall is
//! the server's. It is tally's own gRPC stack (`tally_runtime_mio::client`) on one mio thread.
//!
//!   grpc-noop 127.0.0.1:2379
//!   grpc-noop 127.0.0.1:2379 --delay-us 2000
//!
//! `--delay-us` holds every answer that long (still no work; mio's poll timeout counts whole
//! milliseconds, so held answers leave in bursts, as a cluster's do at each commit). It shows
//! what a server's latency alone costs a client: check perf l here fell from 7,658 writes/s at
//! once to 5,230 at 300 µs and 4,196–4,702 at 1–3 ms, with the servers idle.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpListener;
use mio::{Events, Poll, Token, Waker};
use tally_runtime_mio::client::{CallEvent, CallId, GrpcConfig, GrpcServer, Status};

const WAKER: Token = Token(0);
const SERVER_BASE: usize = 1;
/// check perf --load=xl opens 1,000 clients on each endpoint.
const CONNECTIONS_MAX: usize = 4096;
const EVENTS_MAX: usize = 1024;

const USAGE: &str = "usage: grpc-noop ADDR:PORT [--delay-us MICROSECONDS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, delay) = match args.as_slice() {
        [addr] => (addr, Duration::ZERO),
        [addr, flag, us] if flag == "--delay-us" => match us.parse() {
            Ok(us) => (addr, Duration::from_micros(us)),
            Err(e) => {
                eprintln!("grpc-noop: --delay-us {us}: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("grpc-noop: {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(addr, delay) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc-noop: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Answers held back by `--delay-us`, in arrival order (so also in due order).
struct Held {
    delay: Duration,
    calls: VecDeque<(Instant, CallId)>,
}

impl Held {
    fn timeout(&self) -> Option<Duration> {
        let (due, _) = self.calls.front()?;
        Some(due.saturating_duration_since(Instant::now()))
    }

    fn answer_due(&mut self, server: &mut GrpcServer) {
        let now = Instant::now();
        while let Some(&(due, call)) = self.calls.front() {
            if due > now {
                break;
            }
            self.calls.pop_front();
            answer(server, call);
        }
    }
}

fn serve(addr: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let listener = TcpListener::bind(addr)?;
    let config = GrpcConfig::default().with_connections_max(CONNECTIONS_MAX);
    let mut server = GrpcServer::new(listener, SERVER_BASE, poll.registry(), waker, config, None)?;
    let mut events = Events::with_capacity(EVENTS_MAX);
    let mut held = Held {
        delay,
        calls: VecDeque::new(),
    };
    loop {
        if let Err(e) = poll.poll(&mut events, held.timeout()) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        server.begin_turn();
        for event in &events {
            if event.token() == WAKER {
                server.on_wake(poll.registry());
            } else if server.owns(event.token()) {
                server.handle_event(poll.registry(), event);
            }
        }
        answer_all(&mut server, &mut held);
        held.answer_due(&mut server);
        server.flush(poll.registry());
    }
}

fn answer_all(server: &mut GrpcServer, held: &mut Held) {
    while let Some(event) = server.poll_call() {
        match event {
            CallEvent::HalfClosed { call } if held.delay.is_zero() => answer(server, call),
            CallEvent::HalfClosed { call } => {
                held.calls.push_back((Instant::now() + held.delay, call));
            }
            CallEvent::Http { request, .. } => {
                server.respond_http(request, 404, "text/plain", Bytes::from_static(b"no-op\n"));
            }
            _ => {}
        }
    }
}

fn answer(server: &mut GrpcServer, call: CallId) {
    // An empty protobuf message decodes as any etcd response with default fields.
    match server.send_message(call, Bytes::new()) {
        Ok(()) => server.finish(call, Status::ok()),
        Err(e) => eprintln!("grpc-noop: {e}"),
    }
}
