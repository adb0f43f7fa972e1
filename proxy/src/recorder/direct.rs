//! Direct writes on a thread of their own: a direct write returns only when the disk has
//! the data, so the recorder fills its next buffer while the disk takes the last one.
//!
//! Jobs run in order, at most [`IN_FLIGHT`] at a time; the buffers come back for reuse.
//! While the disk keeps up, every aligned buffer is written directly. When it falls
//! behind (a write is already waiting for the one in progress), the next buffer goes
//! through the page cache instead, which takes it at memory speed: a burst faster than
//! the disk costs CPU for the copy rather than a full recorder queue and dropped data.
//! Once a write fails, the jobs after it are not written (the file is cut back to its
//! last whole block anyway) and the failure is reported at the next submission or wait.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Writes queued or running at once.
const IN_FLIGHT: usize = 3;
/// Pending writes from which the next buffer goes through the page cache: one being
/// written and one waiting means the disk is behind.
const BEHIND: usize = 2;

enum Job {
    /// `buf[range]` (aligned) at `offset` through the `O_DIRECT` descriptor, or the
    /// ordinary one when `cached`.
    Aligned {
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
        safe_after: u64,
        cached: bool,
    },
    /// The unaligned end through the ordinary descriptor.
    Tail {
        bytes: Vec<u8>,
        offset: u64,
        safe_after: u64,
    },
}

struct Done {
    buf: Option<Vec<u8>>,
    result: io::Result<()>,
    /// Where the file ends on a block boundary once this job is written.
    safe_after: u64,
}

pub(super) struct DirectWriter {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    in_flight: usize,
    /// Buffers back from the thread, for reuse.
    pub(super) spare: Vec<Vec<u8>>,
    failed: Option<io::Error>,
    /// The end of the last whole block that is known to be in the file.
    safe_end: u64,
    /// Pending writes from which buffers go through the page cache ([`BEHIND`]).
    behind: usize,
}

impl DirectWriter {
    /// Starts the thread writing `direct` (opened with `O_DIRECT`) and `tail` (the same
    /// file, opened without).
    pub(super) fn start(direct: File, tail: File) -> io::Result<DirectWriter> {
        let (jobs, rx) = sync_channel::<Job>(IN_FLIGHT);
        let (tx, done) = sync_channel::<Done>(IN_FLIGHT + 1);
        let thread = std::thread::Builder::new()
            .name("dicomtap-rec-io".into())
            .spawn(move || {
                let mut failed = false;
                for job in rx {
                    let (buf, result, safe_after) = match job {
                        Job::Aligned {
                            buf,
                            range,
                            offset,
                            safe_after,
                            cached,
                        } => {
                            let r = if failed {
                                Err(io::Error::other("not written after an earlier failure"))
                            } else if cached {
                                tail.write_all_at(&buf[range], offset)
                            } else {
                                direct.write_all_at(&buf[range], offset)
                            };
                            (Some(buf), r, safe_after)
                        }
                        Job::Tail {
                            bytes,
                            offset,
                            safe_after,
                        } => {
                            let r = if failed {
                                Err(io::Error::other("not written after an earlier failure"))
                            } else {
                                tail.write_all_at(&bytes, offset)
                            };
                            (None, r, safe_after)
                        }
                    };
                    failed |= result.is_err();
                    if tx
                        .send(Done {
                            buf,
                            result,
                            safe_after,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
                let _ = direct.sync_all();
            })?;
        Ok(DirectWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            in_flight: 0,
            spare: Vec::new(),
            failed: None,
            safe_end: 0,
            behind: BEHIND,
        })
    }

    /// Queues `buf[range]` for `offset`; waits while [`IN_FLIGHT`] writes are pending.
    /// Returns whether it goes through the page cache (the disk is behind).
    pub(super) fn write_aligned(
        &mut self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
        safe_after: u64,
    ) -> io::Result<bool> {
        let cached = self.in_flight >= self.behind;
        self.submit(Job::Aligned {
            buf,
            range,
            offset,
            safe_after,
            cached,
        })?;
        Ok(cached)
    }

    /// Queues the unaligned end `bytes` for `offset`.
    pub(super) fn write_tail(
        &mut self,
        bytes: Vec<u8>,
        offset: u64,
        safe_after: u64,
    ) -> io::Result<()> {
        self.submit(Job::Tail {
            bytes,
            offset,
            safe_after,
        })
    }

    fn submit(&mut self, job: Job) -> io::Result<()> {
        while self.in_flight >= IN_FLIGHT {
            self.wait_one();
        }
        self.take_failure()?;
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(io::Error::other("the recorder's I/O thread ended"));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Sends buffers through the page cache from `pending` writes on (tests: 0 = always).
    #[cfg(test)]
    pub(super) fn set_behind(&mut self, pending: usize) {
        self.behind = pending;
    }

    /// Waits until every queued write is done; the first failure, if any.
    pub(super) fn wait_all(&mut self) -> io::Result<()> {
        while self.in_flight > 0 {
            self.wait_one();
        }
        self.take_failure()
    }

    /// Where the file ends on a block boundary with everything before it written.
    pub(super) fn safe_end(&self) -> u64 {
        self.safe_end
    }

    fn wait_one(&mut self) {
        match self.done.recv() {
            Ok(done) => {
                self.in_flight -= 1;
                if let Some(buf) = done.buf {
                    self.spare.push(buf);
                }
                match done.result {
                    Ok(()) if self.failed.is_none() => {
                        self.safe_end = self.safe_end.max(done.safe_after);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        self.failed.get_or_insert(e);
                    }
                }
            }
            Err(_) => {
                self.in_flight = 0;
                self.failed
                    .get_or_insert_with(|| io::Error::other("the recorder's I/O thread ended"));
            }
        }
    }

    fn take_failure(&mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => {
                // Keeps failing: nothing more is written through this writer.
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Waits for the pending writes and ends the thread (which syncs the direct
    /// descriptor).
    pub(super) fn stop(&mut self) {
        let _ = self.wait_all();
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        self.stop();
    }
}
