//! Transport tests: real sockets on 127.0.0.1, one mio `Poll` driving several transports in
//! one thread, bounded by a deadline (no sleeps).

mod harness;
mod limits;
mod plain;
mod proxy;
mod tls;
mod wire;
