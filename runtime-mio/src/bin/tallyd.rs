//! `tallyd`: a tally member. Takes etcd's flags; see `tallyd --help` and `tallyd --version`.

use std::process::ExitCode;

use tally_runtime_mio::server::{FlagError, Flags, run};

fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(request @ (FlagError::HelpRequested | FlagError::VersionRequested)) => {
            println!("{request}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("tallyd: {error}\n(see tallyd --help)");
            return ExitCode::from(2);
        }
    };
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tallyd: fatal: {error}");
            ExitCode::FAILURE
        }
    }
}
