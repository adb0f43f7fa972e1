//! One file the recorder writes: whole blocks are assembled in memory and written out
//! together, so the file always ends on a block boundary.
//!
//! A capture is written once and never read back by the proxy, and copying every
//! recorded byte into the page cache costs the kernel about as much CPU as relaying it.
//! So the capture is written with direct I/O (`O_DIRECT`) where the file system allows
//! it: the disk reads the recorder's own buffer and the kernel copies nothing. Direct
//! writes must start and end on [`ALIGN`] boundaries; the unaligned end of what is
//! buffered stays in memory for the next write and, when the recorder flushes, goes in
//! through a second, ordinary descriptor (the next direct write covers it again). The
//! writes run on a thread of their own ([`DirectWriter`]). Where direct I/O is refused
//! (tmpfs on older kernels, some network file systems), the file is written through the
//! page cache instead, as the event log always is.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;

use bytes::Bytes;

use super::direct::DirectWriter;
use super::{MAX_SEGMENT, RecorderError};

/// Buffered bytes that trigger a write before the flush interval. Payload chunks wait in
/// the buffer by reference, so this also bounds how long the recorder keeps the proxy's
/// read blocks from being reused.
const FLUSH_AT: usize = 512 * 1024;
/// Buffered bytes that trigger a direct write: larger writes keep the disk busier.
const DIRECT_FLUSH_AT: usize = 1024 * 1024;
/// Payloads shorter than this are copied into the buffer; longer ones are written from
/// the forwarded chunk itself (one `writev` entry each).
const COPY_BELOW: usize = 2048;
/// Entries per `writev` call (the kernel's IOV_MAX is 1024).
const MAX_IOVECS: usize = 1024;
/// Alignment of direct writes: memory address, file offset and length. 4 KiB covers
/// every logical block size in use.
const ALIGN: usize = 4096;

/// How a capture file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteMode {
    /// Through the page cache.
    Buffered,
    /// With `O_DIRECT` where the file system allows it, else buffered.
    Direct,
}

pub(super) struct BlockFile {
    pub(super) path: PathBuf,
    /// The ordinary descriptor: buffered writes, and cutting the file after a failure.
    file: File,
    /// Direct mode: the writer of the `O_DIRECT` descriptor.
    direct: Option<DirectWriter>,
    /// Bytes waiting to be written, from `start` on. In direct mode `start` places them
    /// at an [`ALIGN`]ed address, and every payload is copied in.
    buf: Vec<u8>,
    start: usize,
    /// Buffered mode: long payloads written from the forwarded chunks themselves, each
    /// at its offset in `buf`.
    shared: Vec<(usize, Bytes)>,
    shared_len: usize,
    /// Bytes handed to the file (in direct mode, a multiple of [`ALIGN`]).
    written: u64,
    /// Direct mode: the ends of the blocks not yet wholly handed to the file. Aligned
    /// writes stop inside blocks; a failed write cuts the file back to the last end
    /// known to be written.
    block_ends: VecDeque<u64>,
    /// Bytes written with direct I/O by writers no longer in use (the others went
    /// through the page cache).
    direct_bytes: u64,
}

impl BlockFile {
    /// Creates (truncates) `path`, mode 0600.
    pub(super) fn create(path: PathBuf, mode: WriteMode) -> Result<BlockFile, RecorderError> {
        let io = |source| RecorderError::Io {
            path: path.clone(),
            source,
        };
        let open = |direct: bool| {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true).mode(0o600);
            if direct {
                options.custom_flags(libc::O_DIRECT);
            }
            options.open(&path)
        };
        let direct = if mode == WriteMode::Direct {
            match open(true) {
                Ok(f) => Some(f),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
                Err(e) => return Err(io(e)),
            }
        } else {
            None
        };
        let file = match &direct {
            Some(_) => OpenOptions::new().write(true).open(&path).map_err(io)?,
            None => open(false).map_err(io)?,
        };
        let direct = match direct {
            Some(d) if accepts_direct_writes(&d) => {
                file.set_len(0).map_err(io)?;
                Some(DirectWriter::start(d, file.try_clone().map_err(io)?).map_err(io)?)
            }
            _ => {
                if mode == WriteMode::Direct {
                    tracing::info!(
                        "{}: the file system refuses direct I/O; writing through the page cache",
                        path.display()
                    );
                }
                None
            }
        };
        let mut f = BlockFile {
            path,
            file,
            direct,
            buf: Vec::new(),
            start: 0,
            shared: Vec::new(),
            shared_len: 0,
            written: 0,
            block_ends: VecDeque::new(),
            direct_bytes: 0,
        };
        f.buf = f.fresh_buffer(&[]);
        Ok(f)
    }

    /// Whether whole blocks go to the disk without the page cache.
    pub(super) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The buffer, for appending block bytes.
    pub(super) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// An empty buffer (aligned in direct mode) holding `pending`.
    fn fresh_buffer(&mut self, pending: &[u8]) -> Vec<u8> {
        let (flush_at, slack) = if self.is_direct() {
            (DIRECT_FLUSH_AT, ALIGN)
        } else {
            (FLUSH_AT, 0)
        };
        let reused = self.direct.as_mut().and_then(|d| d.spare.pop());
        let mut buf =
            reused.unwrap_or_else(|| Vec::with_capacity(slack + flush_at + MAX_SEGMENT + 1024));
        buf.clear();
        self.start = if self.is_direct() {
            buf.as_ptr().align_offset(ALIGN)
        } else {
            0
        };
        buf.resize(self.start, 0);
        buf.extend_from_slice(pending);
        buf
    }

    /// Appends `payload`: copied when short or when writing directly, else kept by
    /// reference until the flush.
    pub(super) fn push_payload(&mut self, payload: Bytes) {
        if payload.len() < COPY_BELOW || self.is_direct() {
            self.buf.extend_from_slice(&payload);
        } else {
            self.shared_len += payload.len();
            self.shared.push((self.buf.len(), payload));
        }
    }

    pub(super) fn pending(&self) -> usize {
        self.buf.len() - self.start + self.shared_len
    }

    /// Bytes written with direct I/O and through the page cache. The end written after a
    /// flush is written again by the next direct write, so it counts only once it is
    /// final (`with_end`: the file is closing).
    pub(super) fn written_by_path(&self, with_end: bool) -> (u64, u64) {
        let direct = self.direct_bytes + self.direct.as_ref().map_or(0, |d| d.direct_bytes());
        let total = if with_end { self.size() } else { self.written };
        (direct, total.saturating_sub(direct))
    }

    /// Marks the end of a whole block (or event line) and tells whether enough is
    /// buffered to write it out now.
    pub(super) fn end_block(&mut self) -> bool {
        if !self.is_direct() {
            return self.pending() >= FLUSH_AT;
        }
        let end = self.size();
        if self.block_ends.back().is_none_or(|&last| last < end) {
            self.block_ends.push_back(end);
        }
        self.pending() >= DIRECT_FLUSH_AT
    }

    /// Bytes the file holds once everything buffered is written.
    pub(super) fn size(&self) -> u64 {
        self.written + self.pending() as u64
    }

    /// Writes what is buffered; in direct mode only its aligned part unless `whole`.
    /// When a write fails (a full disk), whatever part of it reached the file is cut off
    /// again, so the file still ends on a block boundary, and the buffer is dropped: the
    /// caller counts the loss.
    pub(super) fn flush(&mut self, whole: bool) -> Result<(), RecorderError> {
        if self.pending() == 0 {
            return Ok(());
        }
        self.end_block();
        let result = if self.is_direct() {
            self.flush_direct(whole)
        } else {
            self.flush_buffered()
        };
        if let Err(source) = result {
            self.cut_after_failure();
            return Err(RecorderError::Io {
                path: self.path.clone(),
                source,
            });
        }
        Ok(())
    }

    /// After a failed write: drops what is buffered and cuts the file after its last
    /// whole block. That end is no longer aligned, so a direct file goes on through the
    /// page cache.
    fn cut_after_failure(&mut self) {
        let cut = match self.direct.take() {
            Some(mut direct) => {
                direct.stop();
                // What is cut off no longer counts.
                self.direct_bytes =
                    (self.direct_bytes + direct.direct_bytes()).min(direct.safe_end());
                direct.safe_end()
            }
            None => self.written,
        };
        let _ = self.file.set_len(cut);
        let _ = (&self.file).seek(SeekFrom::Start(cut));
        self.written = cut;
        self.block_ends.clear();
        self.buf.truncate(self.start);
        self.shared.clear();
        self.shared_len = 0;
    }

    /// One vectored write of the recorder's own bytes and the shared payloads.
    fn flush_buffered(&mut self) -> std::io::Result<()> {
        let pending = self.pending();
        let mut slices = Vec::with_capacity(2 * self.shared.len() + 1);
        let mut from = self.start;
        for (at, payload) in &self.shared {
            if *at > from {
                slices.push(IoSlice::new(&self.buf[from..*at]));
            }
            slices.push(IoSlice::new(payload));
            from = *at;
        }
        if from < self.buf.len() {
            slices.push(IoSlice::new(&self.buf[from..]));
        }
        let result = write_all_vectored(&self.file, &mut slices);
        drop(slices);
        self.buf.truncate(self.start);
        self.shared.clear();
        self.shared_len = 0;
        result?;
        self.written += pending as u64;
        Ok(())
    }

    /// Hands the aligned part of the buffer to the I/O thread (the rest starts the next
    /// buffer); with `whole` also the rest, and waits until all of it is written.
    fn flush_direct(&mut self, whole: bool) -> std::io::Result<()> {
        if (self.buf.as_ptr() as usize + self.start) % ALIGN != 0 {
            // The buffer grew past its capacity and moved: align it again.
            let pending = self.buf[self.start..].to_vec();
            self.buf = self.fresh_buffer(&pending);
        }
        let aligned = (self.buf.len() - self.start) / ALIGN * ALIGN;
        if aligned > 0 {
            let end = self.written + aligned as u64;
            let mut safe_after = 0;
            while let Some(block_end) = self.block_ends.front().copied().filter(|&e| e <= end) {
                safe_after = block_end;
                self.block_ends.pop_front();
            }
            let range = self.start..self.start + aligned;
            let mut next = self.fresh_buffer(&[]);
            next.extend_from_slice(&self.buf[range.end..]);
            let full = std::mem::replace(&mut self.buf, next);
            if let Some(direct) = self.direct.as_mut() {
                direct.write_aligned(full, range, self.written, safe_after)?;
            }
            self.written = end;
        }
        if whole {
            let size = self.size();
            if let Some(direct) = self.direct.as_mut() {
                if self.buf.len() > self.start {
                    // Stays buffered: the next aligned write starts at `written` and
                    // covers it again.
                    direct.write_tail(self.buf[self.start..].to_vec(), self.written, size)?;
                    self.block_ends.clear();
                }
                direct.wait_all()?;
            }
        }
        Ok(())
    }

    /// Flushes everything and asks the disk to keep it.
    pub(super) fn close(&mut self) -> Result<(), RecorderError> {
        self.flush(true)?;
        if let Some(direct) = self.direct.as_mut() {
            direct.stop();
        }
        self.file.sync_all().map_err(|source| RecorderError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Whether `direct` (opened with `O_DIRECT`) takes an aligned write: some file systems
/// accept the flag and refuse the writes.
fn accepts_direct_writes(direct: &File) -> bool {
    let mut block: Vec<u8> = vec![0; 2 * ALIGN];
    let at = block.as_ptr().align_offset(ALIGN);
    block.truncate(at + ALIGN);
    direct.write_all_at(&block[at..], 0).is_ok()
}

/// `write_all` for a list of slices, at most [`MAX_IOVECS`] per call.
fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !slices.is_empty() {
        let n = match file.write_vectored(&slices[..slices.len().min(MAX_IOVECS)]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::direct::Policy;
    use super::super::write_epb;
    use super::*;

    #[test]
    fn more_payloads_than_one_writev_takes_are_all_written() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let path = dir.path().join("many.pcapng");
        let mut file =
            BlockFile::create(path.clone(), WriteMode::Buffered).unwrap_or_else(|_| unreachable!());
        let payload = Bytes::from(vec![0x5A; COPY_BELOW]);
        for n in 0..MAX_IOVECS {
            write_epb(&mut file, n as u64, "c", b"", payload.clone());
        }
        assert!(2 * file.shared.len() > MAX_IOVECS);
        let pending = file.pending();
        file.flush(true).unwrap_or_else(|_| unreachable!());
        let out = std::fs::read(&path).unwrap_or_else(|_| unreachable!());
        assert_eq!(out.len(), pending);
        let word = |i: usize| u32::from_le_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]);
        let (mut at, mut blocks) = (0, 0);
        while at < out.len() {
            let captured = word(at + 20) as usize;
            assert_eq!(captured, COPY_BELOW);
            assert!(out[at + 28..at + 28 + captured].iter().all(|&b| b == 0x5A));
            at += word(at + 4) as usize;
            blocks += 1;
        }
        assert_eq!((at, blocks), (out.len(), MAX_IOVECS));
    }

    #[test]
    fn blocks_with_short_and_long_payloads_are_written_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let path = dir.path().join("t.pcapng");
        let mut file =
            BlockFile::create(path.clone(), WriteMode::Buffered).unwrap_or_else(|_| unreachable!());
        let long: Bytes = (0..5000u32).map(|i| i as u8).collect::<Vec<u8>>().into();
        let payloads = [Bytes::from_static(b"abc"), long.clone(), Bytes::new(), long];
        for (n, p) in payloads.iter().enumerate() {
            write_epb(&mut file, n as u64, "assoc=1", b"HDR", p.clone());
        }
        assert_eq!(
            file.shared.len(),
            2,
            "the long payloads went in by reference"
        );
        let pending = file.pending();
        file.flush(true).unwrap_or_else(|_| unreachable!());
        let out = std::fs::read(&path).unwrap_or_else(|_| unreachable!());
        assert_eq!(out.len(), pending);
        assert_eq!(file.size(), pending as u64);
        let word = |i: usize| u32::from_le_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]);
        let mut at = 0;
        for p in &payloads {
            assert_eq!(word(at), 6, "an Enhanced Packet Block at {at}");
            let total = word(at + 4) as usize;
            assert_eq!(total % 4, 0);
            assert_eq!(word(at + total - 4), total as u32, "trailing length");
            let captured = word(at + 20) as usize;
            assert_eq!(captured, 3 + p.len());
            assert_eq!(&out[at + 28..at + 31], b"HDR");
            assert_eq!(&out[at + 31..at + 31 + p.len()], &p[..]);
            at += total;
        }
        assert_eq!(at, out.len());
    }

    /// What a reader of the file sees: the payloads of its Enhanced Packet Blocks, and
    /// whether the blocks fill the file exactly.
    fn blocks(out: &[u8]) -> (Vec<Vec<u8>>, bool) {
        let word = |i: usize| u32::from_le_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]);
        let (mut at, mut payloads) = (0, Vec::new());
        while at + 28 <= out.len() {
            let total = word(at + 4) as usize;
            if word(at) != 6 || total < 32 || at + total > out.len() {
                return (payloads, false);
            }
            let captured = word(at + 20) as usize;
            payloads.push(out[at + 28..at + 28 + captured].to_vec());
            at += total;
        }
        (payloads, at == out.len())
    }

    fn direct_io_works_in(dir: &std::path::Path) -> bool {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.join("probe"))
            .is_ok()
    }

    #[test]
    fn direct_writes_give_the_same_file_and_a_live_reader_sees_whole_blocks() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let payloads: Vec<Bytes> = (0..600u32)
            .map(|n| {
                let len = [0, 3, 1500, 4093, 65_000, 9000][n as usize % 6];
                (0..len)
                    .map(|i| (i as u32 ^ n) as u8)
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect();
        let mut files = Vec::new();
        // Direct writes with the page cache taking buffers when the disk is behind,
        // always, and every other one.
        let modes = [
            (WriteMode::Buffered, None),
            (WriteMode::Direct, None),
            (WriteMode::Direct, Some(Policy::Always)),
            (WriteMode::Direct, Some(Policy::Alternate)),
        ];
        for (mode, behind) in modes {
            let path = dir.path().join(format!("{mode:?}-{behind:?}.pcapng"));
            let mut file = BlockFile::create(path.clone(), mode).unwrap_or_else(|_| unreachable!());
            if mode == WriteMode::Direct && direct_io_works_in(dir.path()) {
                assert!(file.is_direct());
            }
            if let (Some(policy), Some(direct)) = (behind, file.direct.as_mut()) {
                direct.set_policy(policy);
            }
            for (n, p) in payloads.iter().enumerate() {
                write_epb(&mut file, n as u64, "assoc=7", b"HDR", p.clone());
                if file.end_block() {
                    file.flush(false).unwrap_or_else(|_| unreachable!());
                }
                if n % 97 == 0 {
                    // A flush tick: a reader now sees every block written so far, whole.
                    file.flush(true).unwrap_or_else(|_| unreachable!());
                    let out = std::fs::read(&path).unwrap_or_else(|_| unreachable!());
                    assert_eq!(out.len() as u64, file.size(), "{mode:?} after {n}");
                    let (seen, whole) = blocks(&out);
                    assert!(whole, "{mode:?}: the file ends on a block boundary");
                    assert_eq!(seen.len(), n + 1);
                }
            }
            let size = file.size();
            file.close().unwrap_or_else(|_| unreachable!());
            let (direct, cached) = file.written_by_path(true);
            assert_eq!(direct + cached, size);
            if file.is_direct() {
                match behind {
                    Some(Policy::Always) => {
                        assert_eq!(direct, 0, "every buffer through the page cache")
                    }
                    Some(_) => assert!(direct > 0 && cached > 0, "{direct} {cached}"),
                    None => assert!(direct > 0),
                }
            }
            let out = std::fs::read(&path).unwrap_or_else(|_| unreachable!());
            assert_eq!(out.len() as u64, size);
            let (seen, whole) = blocks(&out);
            assert!(whole);
            assert_eq!(seen.len(), payloads.len());
            for (s, p) in seen.iter().zip(&payloads) {
                assert_eq!(&s[..3], b"HDR");
                assert_eq!(&s[3..], &p[..]);
            }
            files.push(out);
        }
        for (i, f) in files.iter().enumerate() {
            assert!(*f == files[0], "{:?} gives another file", modes[i]);
        }
    }

    #[test]
    fn a_full_disk_under_direct_writes_leaves_whole_blocks_and_writing_goes_on() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        if !direct_io_works_in(dir.path()) {
            eprintln!("SKIPPED: no direct I/O in {}", dir.path().display());
            return;
        }
        let path = dir.path().join("full.pcapng");
        let mut file =
            BlockFile::create(path.clone(), WriteMode::Direct).unwrap_or_else(|_| unreachable!());
        // The disk fills in the middle of the third megabyte, inside some block.
        if let Some(direct) = file.direct.as_mut() {
            direct.set_full_at(2_500_000);
        }
        let payload =
            |n: u64| -> Bytes { vec![(n % 251) as u8; 9000 + (n as usize % 7) * 333].into() };
        let (mut failures, mut n) = (0, 0u64);
        while n < 400 {
            write_epb(&mut file, n, "c", b"HDR", payload(n));
            n += 1;
            if file.end_block() && file.flush(false).is_err() {
                failures += 1;
            }
            if n % 50 == 0 && file.flush(true).is_err() {
                failures += 1;
            }
        }
        assert!(failures > 0, "the full disk was never hit");
        assert!(
            !file.is_direct(),
            "after the failure the file goes on buffered"
        );
        file.close().unwrap_or_else(|_| unreachable!());
        let out = std::fs::read(&path).unwrap_or_else(|_| unreachable!());
        let (seen, whole) = blocks(&out);
        assert!(whole, "the file ends on a block boundary");
        // Every block is one that was written, whole; some in the middle were lost.
        assert!(seen.len() > 100 && seen.len() < 400, "{}", seen.len());
        let mut last = None;
        for s in &seen {
            assert_eq!(&s[..3], b"HDR");
            let k = u64::from(s[3]);
            assert!(s[3..].iter().all(|&b| b == s[3]));
            let n = (0..400u64)
                .filter(|n| n % 251 == k && payload(*n).len() == s.len() - 3)
                .find(|n| last.is_none_or(|l| *n > l))
                .unwrap_or_else(|| unreachable!());
            last = Some(n);
        }
        assert_eq!(
            last,
            Some(399),
            "blocks written after the failure are in the file"
        );
    }

    #[test]
    fn a_buffer_that_outgrew_its_capacity_is_aligned_again() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let path = dir.path().join("big.pcapng");
        let mut file =
            BlockFile::create(path.clone(), WriteMode::Direct).unwrap_or_else(|_| unreachable!());
        // Far more than the buffer holds, without a flush in between: it reallocates.
        let payload = Bytes::from(vec![0xA5; 60_000]);
        for n in 0..60 {
            write_epb(&mut file, n, "c", b"", payload.clone());
        }
        file.close().unwrap_or_else(|_| unreachable!());
        let out = std::fs::read(&path).unwrap_or_else(|_| unreachable!());
        let (seen, whole) = blocks(&out);
        assert!(whole);
        assert_eq!(seen.len(), 60);
        assert!(
            seen.iter()
                .all(|s| s.len() == 60_000 && s.iter().all(|&b| b == 0xA5))
        );
    }
}
