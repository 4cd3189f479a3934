//! The WAL thread: owns a [`Wal`], group-commits everything queued, reports completions.

use std::collections::VecDeque;
use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::error::WalError;
use super::types::{Batch, Durable};
use super::writer::Wal;

/// A report from the WAL thread. Each one is followed by a call of the wake callback.
#[derive(Debug)]
#[non_exhaustive]
pub enum Completion {
    /// Every accepted batch with a sequence number up to `seq()` is durable.
    Durable(Durable),
    /// The batch with this sequence number was refused (limits or index checks) and is not
    /// in the log. Nothing was written for it.
    Rejected {
        /// The batch's sequence number, as `submit` returned it.
        seq: u64,
        /// Why.
        error: WalError,
    },
    /// An I/O error poisoned the WAL. Nothing after the last `Durable` report is durable, and
    /// every later batch comes back as `Rejected` with [`WalError::Poisoned`].
    Failed(WalError),
    /// The disk is full ([`WalError::is_out_of_space`]): what is not durable yet stays queued,
    /// and the thread writes it again every [`OUT_OF_SPACE_RETRY`] until it fits. Reported
    /// once per episode; [`Completion::SpaceRecovered`] ends it.
    OutOfSpace(WalError),
    /// A write fitted again after [`Completion::OutOfSpace`]; a `Durable` report precedes it.
    SpaceRecovered,
}

/// How often the thread tries again to write what a full disk refused.
pub const OUT_OF_SPACE_RETRY: Duration = Duration::from_millis(500);

/// Why a batch was not queued. The batch is handed back.
#[non_exhaustive]
pub enum SubmitError {
    /// The queue holds `batch_queue_max` batches already.
    Full(Batch),
    /// The WAL thread has stopped.
    Closed(Batch),
}

impl SubmitError {
    /// The batch that was not queued.
    pub fn into_batch(self) -> Batch {
        match self {
            Self::Full(b) | Self::Closed(b) => b,
        }
    }
}

impl fmt::Debug for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("SubmitError::Full"),
            Self::Closed(_) => f.write_str("SubmitError::Closed"),
        }
    }
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("wal: submission queue is full"),
            Self::Closed(_) => f.write_str("wal: the WAL thread has stopped"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// Runs a [`Wal`] on its own thread.
///
/// Batches go in through a bounded queue (`batch_queue_max`); the thread appends everything
/// queued (up to `batch_bytes_max`) and syncs it once. Completions come back through the
/// channel returned by [`WalThread::spawn`] (bounded by `completion_queue_max`); each send is
/// followed by a call of the wake callback, e.g. a closure that calls `mio::Waker::wake`.
/// The thread never blocks on a full completion queue (reports wait, merged, until there is
/// room), so a loop that blocks in [`WalThread::submit`] cannot deadlock with it; a loop that
/// must never block uses [`WalThread::try_submit`].
///
/// Every submission gets the next sequence number, accepted or rejected.
pub struct WalThread {
    tx: Option<SyncSender<Batch>>,
    handle: Option<JoinHandle<Wal>>,
    next_seq: u64,
    batch_bytes_max: u64,
}

impl fmt::Debug for WalThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalThread")
            .field("next_seq", &self.next_seq)
            .field("running", &self.tx.is_some())
            .finish()
    }
}

impl WalThread {
    /// Starts the thread. `wake` is called after every completion is sent.
    pub fn spawn(
        wal: Wal,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<(WalThread, Receiver<Completion>), WalError> {
        let (tx, rx) = mpsc::sync_channel(wal.config().batch_queue_max());
        let (done_tx, done_rx) = mpsc::sync_channel(wal.config().completion_queue_max());
        let next_seq = wal.next_seq();
        let batch_bytes_max = wal.config().batch_bytes_max();
        let handle = thread::Builder::new()
            .name("tally-wal".into())
            .spawn(move || run(wal, &rx, &done_tx, wake.as_ref()))
            .map_err(|e| WalError::io("spawn WAL thread", "", e))?;
        let thread = WalThread {
            tx: Some(tx),
            handle: Some(handle),
            next_seq,
            batch_bytes_max,
        };
        Ok((thread, done_rx))
    }

    /// The largest batch the WAL takes ([`Batch::split`] cuts bigger ones).
    pub fn batch_bytes_max(&self) -> u64 {
        self.batch_bytes_max
    }

    /// Queues a batch without blocking. Returns its sequence number.
    pub fn try_submit(&mut self, batch: Batch) -> Result<u64, SubmitError> {
        let Some(tx) = &self.tx else {
            return Err(SubmitError::Closed(batch));
        };
        match tx.try_send(batch) {
            Ok(()) => Ok(self.take_seq()),
            Err(TrySendError::Full(b)) => Err(SubmitError::Full(b)),
            Err(TrySendError::Disconnected(b)) => Err(SubmitError::Closed(b)),
        }
    }

    /// Queues a batch, waiting while the queue is full. Returns its sequence number.
    pub fn submit(&mut self, batch: Batch) -> Result<u64, SubmitError> {
        let Some(tx) = &self.tx else {
            return Err(SubmitError::Closed(batch));
        };
        match tx.send(batch) {
            Ok(()) => Ok(self.take_seq()),
            Err(mpsc::SendError(b)) => Err(SubmitError::Closed(b)),
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Finishes everything queued, stops the thread and hands the writer back (`None` if the
    /// thread panicked).
    pub fn shutdown(mut self) -> Option<Wal> {
        self.tx = None;
        self.handle.take()?.join().ok()
    }
}

impl Drop for WalThread {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// How long the thread waits for new batches before it retries delivering completions that
/// did not fit in a full completion queue.
const OUTBOX_RETRY: Duration = Duration::from_millis(1);

/// Completions on their way to the loop. Sending never blocks: when the bounded completion
/// queue is full, reports wait here (consecutive `Durable` reports merge into the newest, so
/// this stays small) and go out as soon as there is room. So the WAL thread never waits on the
/// loop, and the loop and the WAL thread cannot deadlock on each other's queues.
struct Outbox<'a> {
    done: &'a SyncSender<Completion>,
    wake: &'a (dyn Fn() + Send),
    queue: VecDeque<Completion>,
}

impl Outbox<'_> {
    fn push(&mut self, c: Completion) {
        if matches!(c, Completion::Durable(_))
            && matches!(self.queue.back(), Some(Completion::Durable(_)))
        {
            self.queue.pop_back();
        }
        self.queue.push_back(c);
        self.flush();
    }

    fn flush(&mut self) {
        let mut sent = false;
        while let Some(c) = self.queue.pop_front() {
            match self.done.try_send(c) {
                Ok(()) => sent = true,
                Err(TrySendError::Full(c)) => {
                    self.queue.push_front(c);
                    break;
                }
                // Nobody listens any more; keep the log consistent anyway.
                Err(TrySendError::Disconnected(_)) => self.queue.clear(),
            }
        }
        if sent {
            (self.wake)();
        }
    }

    /// The next submitted batch, or `None` once the submitting side is gone.
    fn next_batch(&mut self, rx: &Receiver<Batch>) -> Option<Batch> {
        loop {
            if self.queue.is_empty() {
                return rx.recv().ok();
            }
            match rx.recv_timeout(OUTBOX_RETRY) {
                Ok(b) => return Some(b),
                Err(RecvTimeoutError::Timeout) => self.flush(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

fn run(
    mut wal: Wal,
    rx: &Receiver<Batch>,
    done: &SyncSender<Completion>,
    wake: &(dyn Fn() + Send),
) -> Wal {
    let mut outbox = Outbox {
        done,
        wake,
        queue: VecDeque::new(),
    };
    let mut carry: Option<Batch> = None;
    loop {
        let Some(first) = carry
            .take()
            .or_else(|| next_batch(&mut wal, rx, &mut outbox))
        else {
            outbox.flush();
            return wal;
        };
        let mut accepted = append(&mut wal, first, &mut outbox);
        while wal.pending_bytes() < wal.config().batch_bytes_max() {
            let Ok(next) = rx.try_recv() else { break };
            if wal.pending_bytes() + next.encoded_bytes() > wal.config().batch_bytes_max() {
                carry = Some(next);
                break;
            }
            accepted |= append(&mut wal, next, &mut outbox);
        }
        if !accepted {
            continue;
        }
        let before = wal.durable();
        match wal.sync() {
            Ok(durable) => outbox.push(Completion::Durable(durable)),
            Err(error) => {
                if wal.durable() != before {
                    outbox.push(Completion::Durable(wal.durable()));
                }
                if wal.is_poisoned() {
                    // Later batches come back as Rejected.
                    outbox.push(Completion::Failed(error));
                } else {
                    outbox.push(Completion::OutOfSpace(error));
                    if !wait_for_space(&mut wal, rx, &mut outbox) {
                        outbox.flush();
                        return wal;
                    }
                }
            }
        }
    }
}

/// After a full disk: writes what is queued again every [`OUT_OF_SPACE_RETRY`], queueing the
/// batches that arrive meanwhile behind it, until a write fits (or another error poisons the
/// WAL). False once the submitting side is gone.
fn wait_for_space(wal: &mut Wal, rx: &Receiver<Batch>, outbox: &mut Outbox<'_>) -> bool {
    let mut next_try = Instant::now() + OUT_OF_SPACE_RETRY;
    loop {
        outbox.flush();
        match rx.recv_timeout(next_try.saturating_duration_since(Instant::now())) {
            Ok(batch) => {
                let _ = append(wal, batch, outbox);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return false,
        }
        next_try = Instant::now() + OUT_OF_SPACE_RETRY;
        let before = wal.durable();
        let result = wal.sync();
        if wal.durable() != before {
            outbox.push(Completion::Durable(wal.durable()));
        }
        match result {
            Ok(_) => {
                outbox.push(Completion::SpaceRecovered);
                return true;
            }
            Err(error) if wal.is_poisoned() => {
                outbox.push(Completion::Failed(error));
                return true;
            }
            Err(_) => {}
        }
    }
}

/// The next batch. While none is queued, the thread removes purged segments and preallocates
/// the next segment, a step at a time, so neither a purge nor a roll costs the commit path
/// more than a rename.
fn next_batch(wal: &mut Wal, rx: &Receiver<Batch>, outbox: &mut Outbox<'_>) -> Option<Batch> {
    loop {
        match rx.try_recv() {
            Ok(b) => return Some(b),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        match wal.purge_step() {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => eprintln!("{e} (the next open removes it)"),
        }
        match wal.prepare_next_segment() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                eprintln!("{e} (the segment will be created when it is needed)");
                break;
            }
        }
    }
    outbox.next_batch(rx)
}

/// Appends one batch; reports a rejection. True if it was accepted.
fn append(wal: &mut Wal, batch: Batch, outbox: &mut Outbox<'_>) -> bool {
    let seq = wal.next_seq();
    match wal.append(batch) {
        Ok(_) => true,
        Err(error) => {
            outbox.push(Completion::Rejected { seq, error });
            false
        }
    }
}
