//! `tallyd`: a tally member. Takes etcd's flags; see `tallyd --help` and `tallyd --version`.
//! `tallyd snapshot ...` runs a command on snapshot files instead (`tallyd snapshot --help`).

use std::process::ExitCode;

use tally_runtime_mio::server::{FlagError, Flags, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("snapshot", rest)) = args.split_first().map(|(c, r)| (c.as_str(), r)) {
        return tally_runtime_mio::etcd_snapshot::command_main(rest);
    }
    let flags = match Flags::parse(args) {
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
