//! What the process tests that drive tally with another project's etcd client (the
//! `etcd-client` crate) share: a runtime for it and a connection to one member. Each test
//! binary includes this module and uses part of it.
#![allow(dead_code)]

use etcd_client::Client;
use tally_tests::process::ProcCluster;

/// A single-threaded tokio runtime: etcd-client needs one, the tests need no more.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// etcd-client connected to `member` alone.
pub async fn connect(c: &ProcCluster, member: usize) -> Client {
    Client::connect([format!("http://{}", c.endpoint(member))], None)
        .await
        .expect("etcd-client connects")
}
