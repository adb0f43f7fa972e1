//! Direct writes on a thread of their own: a direct write returns only when the disk has
//! the data, so the recorder fills its next buffer while the disk takes the last one.
//!
//! Jobs run in order, at most [`IN_FLIGHT`] at a time; the buffers come back for reuse.
//! A buffer is written directly when no other buffer waits behind it. When one does, the
//! disk is behind the traffic, and the buffer goes through the page cache instead, which
//! takes it at memory speed: a burst faster than the disk costs CPU for the copy rather
//! than a full recorder queue and dropped data. Once a write fails, the jobs after it are
//! not written (the file is cut back to its last whole block anyway) and the failure is
//! reported at the next submission or wait.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Writes queued or running at once.
const IN_FLIGHT: usize = 4;

/// When aligned buffers go through the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// When another write waits behind it (the disk is behind).
    WhenBehind,
    /// Always (tests).
    #[cfg(test)]
    Always,
    /// Never (tests).
    #[cfg(test)]
    Never,
    /// Every other job (tests).
    #[cfg(test)]
    Alternate,
    /// The write fails as on a full disk (tests).
    #[cfg(test)]
    Fail,
}

enum Job {
    /// `buf[range]` (aligned) at `offset`.
    Aligned {
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
        safe_after: u64,
    },
    /// The unaligned end, through the ordinary descriptor.
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
    /// Bytes this job wrote with direct I/O.
    direct_bytes: u64,
}

pub(super) struct DirectWriter {
    jobs: Option<SyncSender<(Job, Policy)>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    in_flight: usize,
    /// Buffers back from the thread, for reuse.
    pub(super) spare: Vec<Vec<u8>>,
    failed: Option<io::Error>,
    /// The end of the last whole block that is known to be in the file.
    safe_end: u64,
    /// Bytes written with direct I/O so far.
    direct_bytes: u64,
    policy: Policy,
    submitted: u64,
    /// Tests: writes reaching past this offset fail as on a full disk.
    #[cfg(test)]
    full_at: Option<u64>,
}

impl DirectWriter {
    /// Starts the thread writing `direct` (opened with `O_DIRECT`) and `cached` (the same
    /// file, opened without).
    pub(super) fn start(direct: File, cached: File) -> io::Result<DirectWriter> {
        let (jobs, rx) = sync_channel::<(Job, Policy)>(IN_FLIGHT);
        let (tx, done) = sync_channel::<Done>(IN_FLIGHT + 1);
        let thread = std::thread::Builder::new()
            .name("dicomtap-rec-io".into())
            .spawn(move || write_jobs(&direct, &cached, &rx, &tx))?;
        Ok(DirectWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            in_flight: 0,
            spare: Vec::new(),
            failed: None,
            safe_end: 0,
            direct_bytes: 0,
            policy: Policy::WhenBehind,
            submitted: 0,
            #[cfg(test)]
            full_at: None,
        })
    }

    #[cfg(test)]
    pub(super) fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Tests: the disk is full from `offset` on.
    #[cfg(test)]
    pub(super) fn set_full_at(&mut self, offset: u64) {
        self.full_at = Some(offset);
    }

    /// Queues `buf[range]` for `offset`; waits while [`IN_FLIGHT`] writes are pending.
    pub(super) fn write_aligned(
        &mut self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
        safe_after: u64,
    ) -> io::Result<()> {
        self.submit(Job::Aligned {
            buf,
            range,
            offset,
            safe_after,
        })
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
        let policy = match self.policy {
            #[cfg(test)]
            Policy::Alternate if self.submitted % 2 == 0 => Policy::Always,
            #[cfg(test)]
            Policy::Alternate => Policy::Never,
            policy => policy,
        };
        #[cfg(test)]
        let policy = {
            let end = match &job {
                Job::Aligned { range, offset, .. } => offset + range.len() as u64,
                Job::Tail { bytes, offset, .. } => offset + bytes.len() as u64,
            };
            if self.full_at.is_some_and(|at| end > at) {
                Policy::Fail
            } else {
                policy
            }
        };
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((job, policy)).is_ok());
        if !sent {
            return Err(io::Error::other("the recorder's I/O thread ended"));
        }
        self.in_flight += 1;
        self.submitted += 1;
        Ok(())
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

    /// Bytes written with direct I/O so far.
    pub(super) fn direct_bytes(&self) -> u64 {
        self.direct_bytes
    }

    fn wait_one(&mut self) {
        match self.done.recv() {
            Ok(done) => {
                self.in_flight -= 1;
                self.direct_bytes += done.direct_bytes;
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

    /// Waits for the pending writes and ends the thread. Nothing is synced here: on
    /// rotation an fsync would hold the recorder up for as long as the disk takes the
    /// file's cached part; [`super::file::BlockFile::close`] syncs at shutdown.
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

/// The I/O thread: runs the jobs in order until the writer is gone.
fn write_jobs(direct: &File, cached: &File, rx: &Receiver<(Job, Policy)>, tx: &SyncSender<Done>) {
    let mut failed = false;
    let mut next = None;
    while let Some((job, policy)) = next.take().or_else(|| rx.recv().ok()) {
        next = rx.try_recv().ok();
        let through_cache = match policy {
            // The end written after a flush does not mean the disk is behind.
            Policy::WhenBehind => matches!(next, Some((Job::Aligned { .. }, _))),
            #[cfg(test)]
            Policy::Always => true,
            #[cfg(test)]
            Policy::Never | Policy::Alternate | Policy::Fail => false,
        };
        #[cfg(test)]
        if policy == Policy::Fail {
            failed = true;
        }
        let skipped = || Err(io::Error::other("not written after an earlier failure"));
        let done = match job {
            Job::Aligned {
                buf,
                range,
                offset,
                safe_after,
            } => {
                let len = range.len() as u64;
                let (result, direct_bytes) = if failed {
                    (skipped(), 0)
                } else if through_cache {
                    (cached.write_all_at(&buf[range], offset), 0)
                } else {
                    (direct.write_all_at(&buf[range], offset), len)
                };
                Done {
                    buf: Some(buf),
                    direct_bytes: if result.is_ok() { direct_bytes } else { 0 },
                    result,
                    safe_after,
                }
            }
            Job::Tail {
                bytes,
                offset,
                safe_after,
            } => Done {
                buf: None,
                result: if failed {
                    skipped()
                } else {
                    cached.write_all_at(&bytes, offset)
                },
                safe_after,
                direct_bytes: 0,
            },
        };
        failed |= done.result.is_err();
        if tx.send(done).is_err() {
            break;
        }
    }
}
