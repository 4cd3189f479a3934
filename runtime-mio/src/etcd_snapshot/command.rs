//! `tallyd snapshot ...`: commands on snapshot files, run instead of a member.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::export::export_etcd_file;

/// `tallyd snapshot --help`.
pub const SNAPSHOT_USAGE: &str = "Usage:

  tallyd snapshot export-etcd SNAPSHOT ETCD-SNAPSHOT
    Write ETCD-SNAPSHOT, an etcd 3.4 snapshot file (a bbolt database with etcd's SHA-256
    trailer), from SNAPSHOT: a file `etcdctl snapshot save` wrote against a tally member (or
    against etcd). Every key keeps its history, revisions and lease; `etcdctl snapshot status`
    reads the result and `etcdctl snapshot restore` seeds an etcd 3.4 member from it.
    ETCD-SNAPSHOT must not exist.";

/// Runs `tallyd snapshot ARGS` (the arguments after `snapshot`); its exit code.
pub fn command_main(args: &[String]) -> ExitCode {
    match args {
        [command, from, to] if command == "export-etcd" => {
            match export(Path::new(from), Path::new(to)) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tallyd snapshot export-etcd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        [help] if help == "-h" || help == "--help" => {
            println!("{SNAPSHOT_USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("tallyd snapshot: unknown command or wrong arguments\n\n{SNAPSHOT_USAGE}");
            ExitCode::from(2)
        }
    }
}

fn export(from: &Path, to: &Path) -> Result<String, String> {
    if to.exists() {
        return Err(format!("{} exists; refusing to overwrite it", to.display()));
    }
    let store = crate::server::read_snapshot_file(from).map_err(|e| e.to_string())?;
    let mut part = OsString::from(to.as_os_str());
    part.push(".part");
    let part = PathBuf::from(part);
    let written = (|| -> Result<super::ExportReport, String> {
        let io = |what: &str| {
            let what = format!("{what} {}", part.display());
            move |e: std::io::Error| format!("{what}: {e}")
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .map_err(io("create"))?;
        let report = export_etcd_file(&store, &mut file)
            .map_err(|e| format!("write {}: {e}", part.display()))?;
        file.sync_all().map_err(io("sync"))?;
        Ok(report)
    })();
    let report = match written {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, to).map_err(|e| format!("rename to {}: {e}", to.display()))?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("sync {}: {e}", dir.display()))?;
    }
    Ok(format!(
        "Snapshot saved at {} (etcd 3.4 format): revision {}, compacted at {}, {} records of \
         history, {} leases; {} bytes, {} keys in its buckets (as etcdctl snapshot status \
         counts them)",
        to.display(),
        report.revision(),
        store.compacted_revision(),
        report.records(),
        report.leases(),
        report.file_bytes(),
        report.total_keys()
    ))
}
