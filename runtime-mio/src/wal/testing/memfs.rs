//! An in-memory, fault-injecting file system for crash tests.
//!
//! Every mutation is recorded. [`MemFsLog::crash_image`] rebuilds the disk as a crash after any
//! number of written bytes would leave it: with everything written so far, with only what was
//! synced, or with a write torn at sector granularity.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::wal::fs::{Fs, FsFile, FsReadFile};

/// Sector size used for torn writes.
const SECTOR_BYTES: u64 = 512;

/// How much of the unsynced state survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashMode {
    /// Every byte written before the crash point survives, the in-flight write is cut there.
    Prefix,
    /// Only data and directory entries that were synced survive.
    DurableOnly,
    /// Like `Prefix`, but the in-flight write survives only on alternate 512-byte sectors
    /// (`even` picks which), across its whole length.
    TornSectors {
        /// Keep the even sectors (by file offset) or the odd ones.
        even: bool,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        path: PathBuf,
    },
    Write {
        inode: usize,
        offset: u64,
        data: Arc<[u8]>,
    },
    SetLen {
        inode: usize,
        len: u64,
    },
    SyncData {
        inode: usize,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
    SyncDir {
        dir: PathBuf,
    },
    Mark(u64),
}

#[derive(Clone, Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    live: BTreeMap<PathBuf, usize>,
    durable: BTreeMap<PathBuf, usize>,
    dirs: BTreeSet<PathBuf>,
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn write_into(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).expect("in-memory offsets fit in usize");
    let end = start + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[start..end].copy_from_slice(data);
}

impl State {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Create { path } => {
                if let Some(&inode) = self.live.get(path) {
                    self.inodes[inode].live.clear();
                } else {
                    self.inodes.push(Inode::default());
                    self.live.insert(path.clone(), self.inodes.len() - 1);
                }
            }
            Op::Write {
                inode,
                offset,
                data,
            } => write_into(&mut self.inodes[*inode].live, *offset, data),
            Op::SetLen { inode, len } => {
                let len = usize::try_from(*len).expect("in-memory lengths fit in usize");
                self.inodes[*inode].live.resize(len, 0);
            }
            Op::SyncData { inode } => {
                let node = &mut self.inodes[*inode];
                node.durable.clone_from(&node.live);
            }
            Op::Rename { from, to } => {
                if let Some(inode) = self.live.remove(from) {
                    self.live.insert(to.clone(), inode);
                }
            }
            Op::Remove { path } => {
                self.live.remove(path);
            }
            Op::SyncDir { dir } => {
                self.durable.retain(|p, _| parent(p) != *dir);
                for (p, &inode) in &self.live {
                    if parent(p) == *dir {
                        self.durable.insert(p.clone(), inode);
                    }
                }
            }
            Op::Mark(_) => {}
        }
    }

    /// The disk after a reboot: `durable` picks which view survives.
    fn rebooted(&self, durable: bool) -> State {
        let names = if durable { &self.durable } else { &self.live };
        let mut out = State {
            dirs: self.dirs.clone(),
            ..State::default()
        };
        for (path, &inode) in names {
            let node = &self.inodes[inode];
            let data = if durable { &node.durable } else { &node.live };
            out.inodes.push(Inode {
                live: data.clone(),
                durable: data.clone(),
            });
            out.live.insert(path.clone(), out.inodes.len() - 1);
        }
        out.durable = out.live.clone();
        out
    }
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    log: Vec<Op>,
    written_bytes: u64,
    write_budget_bytes: Option<u64>,
    fail_syncs: bool,
}

/// The in-memory file system. Clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    inner: Arc<Mutex<Inner>>,
}

fn injected(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(kind, format!("injected fault: {what}"))
}

impl MemFs {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed anyway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, op: Op) -> io::Result<()> {
        let mut inner = self.lock();
        inner.state.apply(&op);
        inner.log.push(op);
        Ok(())
    }

    /// Lets only `bytes` more bytes be written: the write that crosses the limit is applied in
    /// part and fails with `StorageFull`, as do all later writes (a full disk).
    pub fn fail_writes_after(&self, bytes: u64) {
        let mut inner = self.lock();
        inner.write_budget_bytes = Some(inner.written_bytes + bytes);
    }

    /// Makes every `sync_data` fail from now on (an EIO from the disk).
    pub fn fail_syncs(&self) {
        self.lock().fail_syncs = true;
    }

    /// Clears injected faults.
    pub fn heal(&self) {
        let mut inner = self.lock();
        inner.write_budget_bytes = None;
        inner.fail_syncs = false;
    }

    /// Records a test marker in the operation log (e.g. "batch 7 was reported durable").
    pub fn mark(&self, id: u64) {
        let _ = self.record(Op::Mark(id));
    }

    /// Total bytes written so far.
    pub fn written_bytes(&self) -> u64 {
        self.lock().written_bytes
    }

    /// A copy of the operation log, to build crash images from.
    pub fn log(&self) -> MemFsLog {
        MemFsLog {
            ops: self.lock().log.clone(),
        }
    }

    /// The current content of a file, if it exists.
    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        let inner = self.lock();
        let inode = *inner.state.live.get(path)?;
        Some(inner.state.inodes[inode].live.clone())
    }

    /// The live file at `path`, open on its inode (reading and writing alike).
    fn open_file(&self, path: &Path) -> io::Result<MemFile> {
        let inode = *self
            .lock()
            .state
            .live
            .get(path)
            .ok_or(io::ErrorKind::NotFound)?;
        Ok(MemFile {
            fs: self.clone(),
            inode,
        })
    }

    /// Replaces a file's content, as media corruption would (not logged, durable at once).
    pub fn corrupt_file(&self, path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut inner = self.lock();
        if let Some(&inode) = inner.state.live.get(path) {
            let node = &mut inner.state.inodes[inode];
            edit(&mut node.live);
            node.durable.clone_from(&node.live);
        }
    }

    fn from_state(state: State) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                state,
                ..Inner::default()
            })),
        }
    }

    fn write(&self, inode: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut inner = self.lock();
        let allowed = match inner.write_budget_bytes {
            Some(limit) => limit.saturating_sub(inner.written_bytes),
            None => u64::MAX,
        };
        let take = usize::try_from(allowed.min(buf.len() as u64)).unwrap_or(buf.len());
        if take > 0 {
            let op = Op::Write {
                inode,
                offset,
                data: Arc::from(&buf[..take]),
            };
            inner.state.apply(&op);
            inner.log.push(op);
            inner.written_bytes += take as u64;
        }
        if take < buf.len() {
            return Err(injected(io::ErrorKind::StorageFull, "no space left"));
        }
        Ok(())
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        let mut d = dir.to_path_buf();
        loop {
            inner.state.dirs.insert(d.clone());
            if !d.pop() {
                break;
            }
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let inner = self.lock();
        if !inner.state.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(inner
            .state
            .live
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.file(path)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsReadFile>> {
        Ok(Box::new(self.open_file(path)?))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        if !self.lock().state.dirs.contains(&parent(path)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.record(Op::Create {
            path: path.to_path_buf(),
        })?;
        self.open_write(path)
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(self.open_file(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if !self.lock().state.live.contains_key(from) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.record(Op::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        if !self.lock().state.live.contains_key(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.record(Op::Remove {
            path: path.to_path_buf(),
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.record(Op::SyncDir {
            dir: dir.to_path_buf(),
        })
    }
}

#[derive(Debug)]
struct MemFile {
    fs: MemFs,
    inode: usize,
}

/// Reads see the inode's current content, like an open file descriptor: a later rename or
/// removal of its name does not change what it reads, `corrupt_file` does.
impl FsReadFile for MemFile {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let inner = self.fs.lock();
        let content = &inner.state.inodes[self.inode].live;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(buf.len());
        let part = content
            .get(start..end)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(part);
        Ok(())
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.fs.lock().state.inodes[self.inode].live.len() as u64)
    }
}

impl FsFile for MemFile {
    fn write_all_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.fs.write(self.inode, offset, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        if self.fs.lock().fail_syncs {
            return Err(injected(io::ErrorKind::Other, "fdatasync failed"));
        }
        self.fs.record(Op::SyncData { inode: self.inode })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.fs.record(Op::SetLen {
            inode: self.inode,
            len,
        })
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.fs.lock().state.inodes[self.inode].live.len() as u64)
    }
}

/// A recorded operation log.
#[derive(Clone, Debug)]
pub struct MemFsLog {
    ops: Vec<Op>,
}

impl MemFsLog {
    /// Total bytes written in the log: crash points run from 0 to this.
    pub fn written_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Write { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// The most bytes any one file held written but not yet synced at any point: what a
    /// writer leaves for the kernel's writeback to send to the disk in one burst.
    pub fn unsynced_bytes_max(&self) -> u64 {
        let mut unsynced: std::collections::HashMap<usize, u64> = Default::default();
        let mut max = 0;
        for op in &self.ops {
            match op {
                Op::Write { inode, data, .. } => {
                    let n = unsynced.entry(*inode).or_default();
                    *n += data.len() as u64;
                    max = max.max(*n);
                }
                Op::SyncData { inode } => {
                    unsynced.remove(inode);
                }
                _ => {}
            }
        }
        max
    }

    /// Byte positions (in written-byte count) where each write starts.
    pub fn write_starts(&self) -> Vec<u64> {
        let mut at = 0;
        let mut starts = Vec::new();
        for op in &self.ops {
            if let Op::Write { data, .. } = op {
                starts.push(at);
                at += data.len() as u64;
            }
        }
        starts
    }

    /// The disk after a crash once `crash_at_bytes` bytes were written, and the markers
    /// recorded before that point.
    ///
    /// Operations that write nothing (sync, rename, marker) right at the crash point count as
    /// done: the crash happens just before the next byte.
    pub fn crash_image(&self, crash_at_bytes: u64, mode: CrashMode) -> (MemFs, Vec<u64>) {
        let mut state = State::default();
        let mut marks = Vec::new();
        let mut written = 0u64;
        for op in &self.ops {
            if let Op::Write {
                inode,
                offset,
                data,
            } = op
            {
                let len = data.len() as u64;
                if written + len > crash_at_bytes {
                    let cut = usize::try_from(crash_at_bytes - written).unwrap_or(data.len());
                    apply_in_flight(&mut state, mode, *inode, *offset, data, cut);
                    break;
                }
                written += len;
            }
            if let Op::Mark(id) = op {
                marks.push(*id);
            }
            state.apply(op);
            // Creating dirs is not logged; carry every dir the files live in.
            if let Op::Create { path } = op {
                state.dirs.insert(parent(path));
            }
        }
        let rebooted = state.rebooted(mode == CrashMode::DurableOnly);
        (MemFs::from_state(rebooted), marks)
    }
}

fn apply_in_flight(
    state: &mut State,
    mode: CrashMode,
    inode: usize,
    offset: u64,
    data: &[u8],
    cut: usize,
) {
    match mode {
        CrashMode::Prefix => write_into(&mut state.inodes[inode].live, offset, &data[..cut]),
        CrashMode::DurableOnly => {}
        CrashMode::TornSectors { even } => {
            let end = offset + data.len() as u64;
            let mut at = offset;
            while at < end {
                let sector = at / SECTOR_BYTES;
                let next = ((sector + 1) * SECTOR_BYTES).min(end);
                if (sector % 2 == 0) == even {
                    let lo = (at - offset) as usize;
                    let hi = (next - offset) as usize;
                    write_into(&mut state.inodes[inode].live, at, &data[lo..hi]);
                }
                at = next;
            }
        }
    }
}
