//! Creating segment files: preallocated (zero-filled) as `.tmp`, synced, then renamed into
//! place with the directory synced. The work can be done ahead of need, a chunk at a time.

use std::path::{Path, PathBuf};

use super::error::WalError;
use super::fs::{Fs, FsFile};
use super::segment::{self, HEADER_BYTES, TMP_SUFFIX};

/// Bytes zero-filled per step.
const CHUNK_BYTES: usize = 1 << 20;
static ZEROS: [u8; CHUNK_BYTES] = [0; CHUNK_BYTES];

/// A segment file being preallocated under its temporary name.
#[derive(Debug)]
pub(crate) struct Prealloc {
    seq: u64,
    tmp: PathBuf,
    file: Box<dyn FsFile>,
    filled_bytes: u64,
    len_bytes: u64,
    synced: bool,
}

impl Prealloc {
    /// Creates (or truncates) the temporary file for segment `seq`.
    pub(crate) fn start(
        fs: &dyn Fs,
        dir: &Path,
        seq: u64,
        len_bytes: u64,
    ) -> Result<Self, WalError> {
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment::file_name(seq)));
        let file = fs
            .create(&tmp)
            .map_err(|e| WalError::io("create segment", &tmp, e))?;
        Ok(Prealloc {
            seq,
            tmp,
            file,
            filled_bytes: 0,
            len_bytes,
            synced: false,
        })
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Writes the header or one chunk of zeros, each synced at once, and syncs once full. True
    /// when complete.
    ///
    /// Why a sync per chunk: unsynced zeros pile up as dirty pages that the kernel's periodic
    /// writeback (every 5 s) sends to the disk tens of megabytes at a time, and the WAL's own
    /// fdatasync waits behind them: 50-130 ms, up to 500 ms, every few seconds under load. A
    /// 1 MiB write and its fdatasync take about 1 ms here, between batches.
    pub(crate) fn step(&mut self) -> Result<bool, WalError> {
        if self.synced {
            return Ok(true);
        }
        let io = |op| {
            let tmp = &self.tmp;
            move |e| WalError::io(op, tmp, e)
        };
        if self.filled_bytes == 0 {
            self.file
                .write_all_at(0, &segment::header(self.seq))
                .map_err(io("preallocate segment"))?;
            self.filled_bytes = HEADER_BYTES as u64;
        } else if self.filled_bytes < self.len_bytes {
            let n = (self.len_bytes - self.filled_bytes).min(CHUNK_BYTES as u64);
            // n <= CHUNK_BYTES, so it fits in usize.
            let n = usize::try_from(n).unwrap_or(CHUNK_BYTES);
            self.file
                .write_all_at(self.filled_bytes, &ZEROS[..n])
                .map_err(io("preallocate segment"))?;
            self.file.sync_data().map_err(io("fdatasync segment"))?;
            self.filled_bytes += n as u64;
        } else {
            self.file.sync_data().map_err(io("fdatasync segment"))?;
            self.synced = true;
        }
        Ok(self.synced)
    }

    /// Gives the file up and removes it: a half-filled segment on a full disk holds space
    /// that snapshots and the next attempt need.
    pub(crate) fn abandon(self, fs: &dyn Fs) {
        let _ = fs.remove_file(&self.tmp);
    }

    /// Completes the file and renames it into place; returns it open for writing. On an error
    /// the temporary file is removed.
    pub(crate) fn finish(mut self, fs: &dyn Fs, dir: &Path) -> Result<Box<dyn FsFile>, WalError> {
        loop {
            match self.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    self.abandon(fs);
                    return Err(e);
                }
            }
        }
        let path = dir.join(segment::file_name(self.seq));
        fs.rename(&self.tmp, &path)
            .map_err(|e| WalError::io("rename segment", &path, e))?;
        fs.sync_dir(dir)
            .map_err(|e| WalError::io("fsync directory", dir, e))?;
        Ok(self.file)
    }
}

/// Creates segment `seq` in one go. A crash leaves either no segment or a complete one.
pub(crate) fn create_segment(
    fs: &dyn Fs,
    dir: &Path,
    seq: u64,
    len_bytes: u64,
) -> Result<Box<dyn FsFile>, WalError> {
    Prealloc::start(fs, dir, seq, len_bytes)?.finish(fs, dir)
}
