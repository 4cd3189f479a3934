//! A fault-injecting TCP proxy for the peer links of real `tallyd` processes.
//!
//! Every member advertises its peer URL as a proxy in front of its real peer listener. The
//! proxy reads the dialer's hello frame (plaintext peer links) to learn which two members a
//! connection joins, so a test can cut any member off from all others, whichever side dials.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The peer hello: u32 LE length, then "TALLYHLO", the protocol versions, the cluster token,
/// and last from u64, to u64 (see runtime-mio's peer wire format).
const HELLO_MAGIC: &[u8; 8] = b"TALLYHLO";
const HELLO_BYTES_MAX: usize = 1024;

#[derive(Debug, Default)]
struct Shared {
    blocked: Mutex<HashSet<u64>>,
    /// Open links: (from, to, the two sockets) so a new block cuts them at once.
    links: Mutex<Vec<(u64, u64, TcpStream, TcpStream)>>,
    stopped: AtomicBool,
}

/// Proxies one member's peer port. Dropping it stops it.
#[derive(Debug)]
pub struct PeerProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl PeerProxy {
    /// Listens on `listen` and forwards to `target`, sharing its block list with `blocks`.
    pub fn start(
        listen: SocketAddr,
        target: SocketAddr,
        blocks: &ProxyControl,
    ) -> std::io::Result<PeerProxy> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::clone(&blocks.shared);
        let accept_shared = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept_shared);
                thread::spawn(move || {
                    let _ = proxy_connection(stream, target, &shared);
                });
            }
        });
        Ok(PeerProxy { addr, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

/// The block list shared by all proxies of one test cluster.
#[derive(Debug, Clone, Default)]
pub struct ProxyControl {
    shared: Arc<Shared>,
}

impl ProxyControl {
    /// Cuts `member` off from every other member, now and until `heal`.
    pub fn isolate(&self, member: u64) {
        self.shared.blocked.lock().expect("lock").insert(member);
        let mut links = self.shared.links.lock().expect("lock");
        links.retain(|(from, to, a, b)| {
            if *from == member || *to == member {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    pub fn heal(&self) {
        self.shared.blocked.lock().expect("lock").clear();
    }
}

fn read_hello(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, u64, u64)> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a peer hello");
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > HELLO_BYTES_MAX {
        return Err(bad());
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    if payload.len() < HELLO_MAGIC.len() + 16 || &payload[..8] != HELLO_MAGIC {
        return Err(bad());
    }
    // The two member ids end the hello, whatever comes between.
    let ids = &payload[payload.len() - 16..];
    let from = u64::from_le_bytes(ids[..8].try_into().map_err(|_| bad())?);
    let to = u64::from_le_bytes(ids[8..].try_into().map_err(|_| bad())?);
    let mut frame = header.to_vec();
    frame.extend_from_slice(&payload);
    Ok((frame, from, to))
}

fn proxy_connection(
    mut client: TcpStream,
    target: SocketAddr,
    shared: &Shared,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let (hello, from, to) = read_hello(&mut client)?;
    client.set_read_timeout(None)?;
    {
        let blocked = shared.blocked.lock().expect("lock");
        if blocked.contains(&from) || blocked.contains(&to) {
            return Ok(());
        }
    }
    let mut server = TcpStream::connect(target)?;
    server.write_all(&hello)?;
    shared
        .links
        .lock()
        .expect("lock")
        .push((from, to, client.try_clone()?, server.try_clone()?));
    let (mut client_read, mut server_write) = (client.try_clone()?, server.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Both);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.join();
    Ok(())
}
