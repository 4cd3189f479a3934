//! A client that stops reading its watch stream while the store changes fast cannot make the
//! member hold an unbounded backlog for it: past the limit its stream ends with UNAVAILABLE
//! (on which etcd's clients retry and resume), and every other client is served throughout.

use std::time::Duration;

mod common;

use common::{connect, runtime};
use etcd_client::PutOptions;
use tally_tests::process::{Options, ProcCluster, etcdctl_available};

/// Values of 1 MiB, 120 of them: well past the 64 MiB a stream may have waiting.
const VALUE_BYTES: usize = 1 << 20;
const PUTS: usize = 120;

#[test]
fn a_watcher_that_stops_reading_is_cut_off_and_the_member_serves_on() {
    if !etcdctl_available() {
        return;
    }
    let mut c = ProcCluster::start(1, Options::default());
    assert!(
        c.wait_leader(Duration::from_secs(20)).is_some(),
        "{}",
        c.logs()
    );
    let ended = runtime().block_on(async {
        let mut watcher = connect(&c, 0).await;
        let mut stream = watcher.watch("big", None).await.expect("watch");
        let mut writer = connect(&c, 0).await;
        for n in 0..PUTS {
            let value = vec![b'0' + (n % 10) as u8; VALUE_BYTES];
            writer
                .put("big", value, Some(PutOptions::new()))
                .await
                .expect("a writer is served while a watcher lags");
        }
        // Now read: the events that made it, then the end.
        let mut events = 0;
        loop {
            let Ok(next) = tokio::time::timeout(Duration::from_secs(10), stream.message()).await
            else {
                return (events, "the stream went on, silent, for 10 s".to_string());
            };
            match next {
                Ok(Some(response)) => events += response.events().len(),
                Ok(None) => return (events, "the stream ended without a status".to_string()),
                Err(etcd_client::Error::GRpcStatus(status)) => {
                    return (events, format!("{:?}: {}", status.code(), status.message()));
                }
                Err(e) => return (events, e.to_string()),
            }
        }
    });
    let (events, end) = ended;
    assert!(
        end.starts_with("Unavailable: ") && end.contains("reads its stream too slowly"),
        "after {events} events: {end}"
    );
    assert!(
        events < PUTS,
        "every event was delivered: no backlog was cut"
    );
    c.ok(&c.endpoint(0), &["put", "after", "v"]);
}
