//! Why `tallyd`'s command line was refused.

use std::fmt;

use super::help::{USAGE, version_text};

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlagError {
    Unknown(String),
    MissingValue(String),
    BadValue {
        flag: String,
        value: String,
    },
    BadUrl(String),
    BadInitialCluster(String),
    /// `--name` does not appear in `--initial-cluster`.
    NameNotInCluster(String),
    /// A TLS URL without the certificate flags it needs.
    TlsWithoutCertificates(&'static str),
    /// One of etcd's flags that tallyd cannot honour, and would be unsafe to ignore.
    Unsupported {
        flag: String,
        why: &'static str,
    },
    HelpRequested,
    /// `--version`: print [`version_text`] and exit.
    VersionRequested,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Unknown(flag) => write!(f, "unknown flag {flag}"),
            FlagError::MissingValue(flag) => write!(f, "flag {flag} needs a value"),
            FlagError::BadValue { flag, value } => write!(f, "invalid value {value:?} for {flag}"),
            FlagError::BadUrl(url) => write!(
                f,
                "invalid URL {url:?} (want http://host:port or https://host:port)"
            ),
            FlagError::BadInitialCluster(text) => {
                write!(f, "invalid --initial-cluster {text:?} (want name=url,...)")
            }
            FlagError::NameNotInCluster(name) => {
                write!(f, "--name {name:?} is not listed in --initial-cluster")
            }
            FlagError::TlsWithoutCertificates(which) => write!(
                f,
                "{which} URLs use https but no certificate flags were given"
            ),
            FlagError::Unsupported { flag, why } => {
                write!(f, "etcd's flag {flag} is not supported by tallyd: {why}")
            }
            FlagError::HelpRequested => f.write_str(USAGE),
            FlagError::VersionRequested => f.write_str(&version_text()),
        }
    }
}

impl std::error::Error for FlagError {}
