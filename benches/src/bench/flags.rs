//! Command-line flags, modelled on etcd's `tools/benchmark`.

use std::fmt;
use std::time::Duration;

pub const USAGE: &str = "\
usage: tally-bench <put|range|txn-put|watch|lease-keepalive|lease-grant> [KEY] [flags]

  put              Put random (or --sequential-keys) keys
  range [KEY]      Range over one key (default \"foo\"); --consistency l|s
  txn-put          Txn: if mod_revision(key) == cached then put else get (as Kubernetes does)
  watch            --watchers over --streams watch one key; one writer puts --total times at
                   --rate; measures the delivery latency of every event
  lease-keepalive  one lease per client, then KeepAliveOnce calls
  lease-grant      grant leases with the ids --lease-id-base + --key-start + 0, 1, 2, ...; with
                   --lease-expire-at-ms each TTL is the whole seconds left until then, so that
                   all of them expire together

flags:
  --endpoints a:p,b:p   gRPC endpoints, connections go round-robin (default 127.0.0.1:2379)
  --conns N             TCP (h2) connections (default 1)
  --clients N           concurrent requests in flight, spread over the connections (default 1)
  --total N             requests to send (default 10000); for watch: puts by the writer
  --duration SECS       run for this long instead of --total
  --rate R              requests/s over all clients, 0 = as fast as possible (default 0;
                        watch: 100)
  --key-size N          key bytes (default 8)       --val-size N   value bytes (default 8)
  --key-space-size N    distinct keys (default 1)   --sequential-keys
  --key-start N         key indexes start here (default 0): load a store in steps
  --lease-id-base N     put: attach lease N + the key's index (granted by lease-grant)
  --lease-expire-at-ms T  lease-grant: when the leases expire, in Unix milliseconds
  --consistency l|s     linearizable or serializable range (default l)
  --watchers N          watch: watchers (default 100)
  --watch-prefix        watch: the watchers watch the key as a prefix
  --streams N           watch: watch streams (default 10)
  --threads N           worker threads (default: min(conns, cores))
  --cacert F --cert F --key F   TLS: CA bundle, client certificate and key (PEM)
  --token T             an auth token (etcd's `token` metadata) on every call
  --output text|json    summary format (default text)
  --no-progress         no progress line on stderr
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Put,
    Range,
    TxnPut,
    Watch,
    LeaseKeepAlive,
    LeaseGrant,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Put => "put",
            Command::Range => "range",
            Command::TxnPut => "txn-put",
            Command::Watch => "watch",
            Command::LeaseKeepAlive => "lease-keepalive",
            Command::LeaseGrant => "lease-grant",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Total(u64),
    Duration(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFlags {
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub command: Command,
    pub endpoints: Vec<String>,
    pub conns: usize,
    pub clients: usize,
    pub stop: Stop,
    /// Requests per second over all clients; 0 is unlimited.
    pub rate: f64,
    pub key_size: usize,
    pub val_size: usize,
    pub key_space_size: u64,
    pub sequential_keys: bool,
    pub key_start: u64,
    /// Put: the lease of key `i` is `lease_id_base + i`; lease-grant: the first id. 0 is none.
    pub lease_id_base: i64,
    /// Lease-grant: the Unix time in milliseconds at which every lease should expire.
    pub lease_expire_at_ms: Option<u64>,
    pub serializable: bool,
    pub range_key: Vec<u8>,
    pub watchers: usize,
    pub watch_prefix: bool,
    pub streams: usize,
    pub threads: usize,
    pub tls: Option<TlsFlags>,
    /// An auth token sent as the `token` metadata of every call.
    pub token: Option<String>,
    pub output: Output,
    pub progress: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FlagError {
    Help,
    Usage(String),
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Help => f.write_str(USAGE),
            FlagError::Usage(message) => write!(f, "{message}\n\n{USAGE}"),
        }
    }
}

fn usage(message: impl Into<String>) -> FlagError {
    FlagError::Usage(message.into())
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, FlagError> {
    value
        .parse()
        .map_err(|_| usage(format!("{flag}: not a number: {value:?}")))
}

fn positive(flag: &str, value: &str) -> Result<usize, FlagError> {
    let n: usize = number(flag, value)?;
    if n == 0 {
        return Err(usage(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

fn default_threads(conns: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    conns.min(cores).max(1)
}

/// Parses the arguments after the program name.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Config, FlagError> {
    let mut args = args.iter().map(AsRef::as_ref);
    let command = match args.next() {
        None | Some("-h" | "--help" | "help") => return Err(FlagError::Help),
        Some("put") => Command::Put,
        Some("range") => Command::Range,
        Some("txn-put") => Command::TxnPut,
        Some("watch") => Command::Watch,
        Some("lease-keepalive") => Command::LeaseKeepAlive,
        Some("lease-grant") => Command::LeaseGrant,
        Some(other) => return Err(usage(format!("unknown command {other:?}"))),
    };
    let mut config = Config {
        command,
        endpoints: vec!["127.0.0.1:2379".into()],
        conns: 1,
        clients: 1,
        stop: Stop::Total(10_000),
        rate: if command == Command::Watch {
            100.0
        } else {
            0.0
        },
        key_size: 8,
        val_size: 8,
        key_space_size: 1,
        sequential_keys: false,
        key_start: 0,
        lease_id_base: 0,
        lease_expire_at_ms: None,
        serializable: false,
        range_key: b"foo".to_vec(),
        watchers: 100,
        watch_prefix: false,
        streams: 10,
        threads: 0,
        tls: None,
        output: Output::Text,
        token: None,
        progress: true,
    };
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(FlagError::Help);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            positional.push(arg.to_string());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "sequential-keys" || name == "no-progress" || name == "watch-prefix" {
            if inline.is_some() {
                return Err(usage(format!("--{name} takes no value")));
            }
            match name {
                "sequential-keys" => config.sequential_keys = true,
                "watch-prefix" => config.watch_prefix = true,
                _ => config.progress = false,
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .map(str::to_string)
                .ok_or_else(|| usage(format!("--{name} needs a value")))?,
        };
        let flag = format!("--{name}");
        match name {
            "endpoints" => {
                config.endpoints = value
                    .split(',')
                    .map(|e| {
                        e.trim()
                            .trim_start_matches("http://")
                            .trim_start_matches("https://")
                    })
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect();
                if config.endpoints.is_empty() {
                    return Err(usage("--endpoints is empty"));
                }
            }
            "conns" => config.conns = positive(&flag, &value)?,
            "clients" => config.clients = positive(&flag, &value)?,
            "total" => config.stop = Stop::Total(positive(&flag, &value)? as u64),
            "duration" => {
                let secs: f64 = number(&flag, value.trim_end_matches('s'))?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(usage("--duration must be positive"));
                }
                config.stop = Stop::Duration(Duration::from_secs_f64(secs));
            }
            "rate" => {
                config.rate = number(&flag, &value)?;
                if !(config.rate >= 0.0 && config.rate.is_finite()) {
                    return Err(usage("--rate must be 0 or more"));
                }
            }
            "key-size" => config.key_size = positive(&flag, &value)?,
            "val-size" => config.val_size = number(&flag, &value)?,
            "key-space-size" => config.key_space_size = positive(&flag, &value)? as u64,
            "key-start" => config.key_start = number(&flag, &value)?,
            "lease-id-base" => {
                config.lease_id_base = number(&flag, &value)?;
                if config.lease_id_base < 0 {
                    return Err(usage("--lease-id-base must be 0 or more"));
                }
            }
            "lease-expire-at-ms" => config.lease_expire_at_ms = Some(number(&flag, &value)?),
            "consistency" => {
                config.serializable = match value.as_str() {
                    "l" | "linearizable" => false,
                    "s" | "serializable" => true,
                    _ => return Err(usage("--consistency is l or s")),
                }
            }
            "watchers" => config.watchers = positive(&flag, &value)?,
            "streams" => config.streams = positive(&flag, &value)?,
            "threads" => config.threads = positive(&flag, &value)?,
            "token" => config.token = Some(value),
            "cacert" => config.tls.get_or_insert_with(TlsFlags::default).cacert = Some(value),
            "cert" => config.tls.get_or_insert_with(TlsFlags::default).cert = Some(value),
            "key" => config.tls.get_or_insert_with(TlsFlags::default).key = Some(value),
            "output" | "o" => {
                config.output = match value.as_str() {
                    "text" => Output::Text,
                    "json" => Output::Json,
                    _ => return Err(usage("--output is text or json")),
                }
            }
            _ => return Err(usage(format!("unknown flag {flag}"))),
        }
    }
    match (command, positional.as_slice()) {
        (_, []) => {}
        (Command::Range, [key]) => config.range_key = key.as_bytes().to_vec(),
        (_, extra) => return Err(usage(format!("unexpected arguments {extra:?}"))),
    }
    if let Some(tls) = &config.tls {
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(usage("--cert and --key go together"));
        }
    }
    if config.command == Command::LeaseGrant && config.lease_id_base == 0 {
        return Err(usage(
            "lease-grant needs --lease-id-base (ids must not be 0)",
        ));
    }
    if config.command == Command::Watch {
        config.streams = config.streams.min(config.watchers);
        config.conns = config.conns.min(config.streams);
    }
    if config.clients < config.conns && config.command != Command::Watch {
        config.conns = config.clients;
    }
    if config.threads == 0 {
        config.threads = default_threads(config.conns);
    }
    config.threads = config.threads.min(config.conns);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_for_put() {
        let c = parse(&["put"]).expect("parse");
        assert_eq!(c.command, Command::Put);
        assert_eq!(c.endpoints, vec!["127.0.0.1:2379".to_string()]);
        assert_eq!((c.conns, c.clients, c.threads), (1, 1, 1));
        assert_eq!(c.stop, Stop::Total(10_000));
        assert_eq!(c.rate, 0.0);
        assert!(c.tls.is_none());
        assert!(c.progress);
    }

    #[test]
    fn etcd_style_put_flags() {
        let c = parse(&[
            "put",
            "--endpoints=http://127.0.0.1:2379,127.0.0.1:22379",
            "--conns",
            "100",
            "--clients=1000",
            "--total",
            "50000",
            "--key-size",
            "16",
            "--val-size=256",
            "--key-space-size",
            "100000",
            "--sequential-keys",
            "--output",
            "json",
            "--no-progress",
            "--threads",
            "2",
        ])
        .expect("parse");
        assert_eq!(c.endpoints, vec!["127.0.0.1:2379", "127.0.0.1:22379"]);
        assert_eq!((c.conns, c.clients, c.threads), (100, 1000, 2));
        assert_eq!(c.stop, Stop::Total(50_000));
        assert_eq!(
            (c.key_size, c.val_size, c.key_space_size),
            (16, 256, 100_000)
        );
        assert!(c.sequential_keys);
        assert_eq!(c.output, Output::Json);
        assert!(!c.progress);
    }

    #[test]
    fn range_key_consistency_duration_and_rate() {
        let c =
            parse(&["range", "mykey", "--consistency", "s", "--duration", "10s"]).expect("parse");
        assert_eq!(c.range_key, b"mykey");
        assert!(c.serializable);
        assert_eq!(c.stop, Stop::Duration(Duration::from_secs(10)));
        let c = parse(&["range", "--rate", "500.5"]).expect("parse");
        assert_eq!(c.range_key, b"foo");
        assert!(!c.serializable);
        assert_eq!(c.rate, 500.5);
    }

    #[test]
    fn tls_flags() {
        let c = parse(&[
            "put", "--cacert", "ca.pem", "--cert", "c.pem", "--key", "k.pem",
        ])
        .expect("parse");
        let tls = c.tls.expect("tls");
        assert_eq!(tls.cacert.as_deref(), Some("ca.pem"));
        assert_eq!(tls.cert.as_deref(), Some("c.pem"));
        assert_eq!(tls.key.as_deref(), Some("k.pem"));
        assert!(matches!(
            parse(&["put", "--cert", "c.pem"]),
            Err(FlagError::Usage(_))
        ));
    }

    #[test]
    fn watch_defaults_and_clamps() {
        let c = parse(&[
            "watch",
            "--watchers",
            "5",
            "--streams",
            "10",
            "--conns",
            "8",
        ])
        .expect("parse");
        assert_eq!((c.watchers, c.streams, c.conns), (5, 5, 5));
        assert_eq!(c.rate, 100.0);
    }

    #[test]
    fn more_conns_than_clients_is_clamped() {
        let c = parse(&["put", "--conns", "10", "--clients", "3"]).expect("parse");
        assert_eq!(c.conns, 3);
    }

    #[test]
    fn errors() {
        assert_eq!(parse::<&str>(&[]), Err(FlagError::Help));
        assert_eq!(parse(&["put", "-h"]), Err(FlagError::Help));
        for bad in [
            vec!["frob"],
            vec!["put", "--bogus", "1"],
            vec!["put", "--conns"],
            vec!["put", "--conns", "0"],
            vec!["put", "--clients", "x"],
            vec!["put", "--rate", "-1"],
            vec!["put", "--duration", "0"],
            vec!["put", "extra"],
            vec!["range", "--consistency", "q"],
            vec!["put", "--output", "xml"],
            vec!["put", "--sequential-keys=1"],
        ] {
            assert!(matches!(parse(&bad), Err(FlagError::Usage(_))), "{bad:?}");
        }
    }
}
