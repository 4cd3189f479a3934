//! `grpc-noop`: a gRPC server that answers every unary call at once with an empty message and
//! status OK, and does nothing else: no Raft, no WAL, no store. Run against it, a client's
//! figures show the client's own ceiling on this machine: `benches/check-perf-ceiling.sh` runs
//! `etcdctl check perf` against three of them to tell how much of a check perf shortfall is
//! the server's. It is tally's own gRPC stack (`tally_runtime_mio::grpc`) on one mio thread.
//!
//!   grpc-noop 127.0.0.1:2379

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use mio::net::TcpListener;
use mio::{Events, Poll, Token, Waker};
use tally_runtime_mio::grpc::{CallEvent, GrpcConfig, GrpcServer, Status};

const WAKER: Token = Token(0);
const SERVER_BASE: usize = 1;
/// check perf --load=xl opens 1,000 clients on each endpoint.
const CONNECTIONS_MAX: usize = 4096;
const EVENTS_MAX: usize = 1024;

fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: grpc-noop ADDR:PORT");
        return ExitCode::from(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("grpc-noop: {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc-noop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let listener = TcpListener::bind(addr)?;
    let config = GrpcConfig::default().with_connections_max(CONNECTIONS_MAX);
    let mut server = GrpcServer::new(listener, SERVER_BASE, poll.registry(), waker, config, None)?;
    let mut events = Events::with_capacity(EVENTS_MAX);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
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
        answer_all(&mut server);
        server.flush(poll.registry());
    }
}

fn answer_all(server: &mut GrpcServer) {
    while let Some(event) = server.poll_call() {
        match event {
            CallEvent::HalfClosed { call } => {
                // An empty protobuf message decodes as any etcd response with default fields.
                match server.send_message(call, Bytes::new()) {
                    Ok(()) => server.finish(call, Status::ok()),
                    Err(e) => eprintln!("grpc-noop: {e}"),
                }
            }
            CallEvent::Http { request, .. } => {
                server.respond_http(request, 404, "text/plain", Bytes::from_static(b"no-op\n"));
            }
            _ => {}
        }
    }
}
