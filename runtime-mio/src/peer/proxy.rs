//! A fault-injecting TCP proxy for tests: forwards connections to a target until told to
//! partition, then cuts every connection and refuses new ones until healed.
//!
//! "Blocked" closes connections instead of black-holing bytes: dropping bytes in the middle of
//! a TCP stream would corrupt the framing rather than model a partition.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections forwarded at once; more are closed on accept.
const PROXY_CONNECTIONS_MAX: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COPY_BUFFER_BYTES: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Shared {
    blocked: AtomicBool,
    stopped: AtomicBool,
    next_id: AtomicU64,
    /// Both sockets of every forwarded connection, to cut them on demand.
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Shuts down every forwarded connection; they stop counting at once.
    fn cut_all(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, (a, b)) in conns.drain() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// A std-thread TCP proxy from a listening address to a target address.
#[derive(Debug)]
pub struct FaultProxy {
    local_addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `listen` (port 0 picks one; see [`Self::local_addr`]) and forwards every
    /// connection to `target`.
    pub fn start(listen: SocketAddr, target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || accept_loop(&listener, target, &shared))?
        };
        Ok(FaultProxy {
            local_addr,
            target,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// `true`: partition (cut every connection now, close new ones on accept).
    /// `false`: heal (forward new connections again).
    pub fn set_blocked(&self, blocked: bool) {
        self.shared.blocked.store(blocked, Ordering::SeqCst);
        if blocked {
            self.shared.cut_all();
        }
    }

    /// Whether the proxy is partitioned.
    pub fn is_blocked(&self) -> bool {
        self.shared.blocked.load(Ordering::SeqCst)
    }

    /// Connections being forwarded right now.
    pub fn connections(&self) -> usize {
        self.shared
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Cuts everything and joins every thread. Also done on drop.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.local_addr, CONNECT_TIMEOUT);
        let _ = acceptor.join();
        self.shared.cut_all();
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, target: SocketAddr, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok((client, _)) = accepted else {
            // E.g. out of file descriptors: do not spin on it.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let full = shared
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            >= PROXY_CONNECTIONS_MAX;
        if shared.blocked.load(Ordering::SeqCst) || full {
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
            drop(client);
            continue;
        };
        if let Err(e) = forward(client, server, shared) {
            eprintln!("fault proxy: cannot forward a connection: {e}");
        }
    }
}

fn forward(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    {
        let mut conns = shared.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns.insert(id, (client.try_clone()?, server.try_clone()?));
    }
    // A partition that began while connecting must not let this connection through.
    if shared.blocked.load(Ordering::SeqCst) {
        shared.cut_all();
    }
    let mut threads = Vec::with_capacity(2);
    for (from, to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        let shared = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("fault-proxy-pipe".into())
                .spawn(move || {
                    copy(from, to);
                    shared
                        .conns
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                })?,
        );
    }
    let mut all = shared
        .threads
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    all.retain(|t| !t.is_finished());
    all.extend(threads);
    Ok(())
}

/// Copies until EOF or error, then closes both sockets so the other direction ends too.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
