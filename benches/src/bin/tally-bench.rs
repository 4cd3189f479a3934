//! `tally-bench`: load generator for etcd's v3 gRPC API (tally and etcd alike). See `--help`.

use std::process::ExitCode;

use tally_benches::bench::{self, flags};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match flags::parse(&args) {
        Ok(config) => config,
        Err(flags::FlagError::Help) => {
            print!("{}", flags::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tally-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match bench::run(&config) {
        Ok(report) => {
            match config.output {
                flags::Output::Text => println!("{}", report.text()),
                flags::Output::Json => println!("{}", report.json()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tally-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
