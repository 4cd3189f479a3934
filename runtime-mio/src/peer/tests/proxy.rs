use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::peer::FaultProxy;

/// An echo server on a thread; returns its address.
fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(message)?;
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back)?;
    Ok(back)
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    // A bound on a broken test, not a timing assumption.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[test]
fn passes_cuts_refuses_and_heals() {
    let mut proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), echo_server()).unwrap();
    let mut first = connect(proxy.local_addr());
    assert_eq!(round_trip(&mut first, b"ping").unwrap(), b"ping");

    proxy.set_blocked(true);
    assert!(proxy.is_blocked());
    let mut buf = [0u8; 8];
    // The cut connection reads EOF (or a reset), never data.
    assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)));
    let mut refused = connect(proxy.local_addr());
    assert!(round_trip(&mut refused, b"ping").is_err());

    proxy.set_blocked(false);
    let mut healed = connect(proxy.local_addr());
    assert_eq!(round_trip(&mut healed, b"pong").unwrap(), b"pong");
    assert_eq!(proxy.connections(), 1);

    proxy.stop();
    assert!(matches!(healed.read(&mut buf), Ok(0) | Err(_)));
    assert!(TcpStream::connect(proxy.local_addr()).is_err());
}
