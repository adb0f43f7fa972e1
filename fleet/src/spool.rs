//! The disk spool in front of the bus: every fleet event is appended here first and
//! removed only once the bus has acknowledged it, so events survive an unreachable bus
//! and a restart of the instance.
//!
//! Layout: a directory (mode 0700) of segment files `seg-<n>.jsonl` (mode 0600), one JSON
//! event per line, and a `cursor` file naming the first line not yet acknowledged
//! (`<segment> <offset>`, replaced atomically). Segments wholly before the cursor are
//! deleted. The spool is bounded: an event that would take the unacknowledged bytes over
//! `max_bytes` is refused (and counted by the caller), so a bus that stays away fills the
//! spool and then costs events, never the disk.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Longest event line accepted (a finding's text is the largest part).
pub const MAX_LINE: usize = 256 * 1024;

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a line starts (or, after it, where the next one does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

/// The spool.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Segments on disk, oldest first, with their lengths.
    segments: VecDeque<(u64, u64)>,
    active: Option<File>,
    /// The last segment ends in a torn line (a crash mid-write): start a new one.
    torn: bool,
    cursor: Pos,
    pending_events: u64,
    /// Capture time of the oldest unacknowledged event, when known.
    oldest_ts_us: Option<u64>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping what a previous run left unsent.
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<Spool, SpoolError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let mut segs: Vec<(u64, u64)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io(dir))?.take(100_000) {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|s| s.strip_prefix("seg-"))
                .and_then(|s| s.strip_suffix(".jsonl"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry.metadata().map_err(io(&entry.path()))?.len();
            segs.push((n, len));
        }
        segs.sort_unstable();
        let cursor_path = dir.join("cursor");
        let cursor = match fs::read_to_string(&cursor_path) {
            Ok(text) => {
                let mut it = text.split_whitespace().map(|t| t.parse::<u64>());
                match (it.next(), it.next()) {
                    (Some(Ok(segment)), Some(Ok(offset))) => Pos { segment, offset },
                    _ => Pos {
                        segment: segs.first().map_or(0, |s| s.0),
                        offset: 0,
                    },
                }
            }
            Err(_) => Pos {
                segment: segs.first().map_or(0, |s| s.0),
                offset: 0,
            },
        };
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1024),
            segment_bytes: segment_bytes.max(1024),
            segments: segs.into_iter().collect(),
            active: None,
            torn: false,
            cursor,
            pending_events: 0,
            oldest_ts_us: None,
        };
        spool.drop_consumed()?;
        if let Some(&(n, len)) = spool.segments.back()
            && len > 0
        {
            let path = spool.seg_path(n);
            let mut f = File::open(&path).map_err(io(&path))?;
            f.seek(SeekFrom::Start(len - 1)).map_err(io(&path))?;
            let mut b = [0u8; 1];
            f.read_exact(&mut b).map_err(io(&path))?;
            spool.torn = b[0] != b'\n';
        }
        if spool.segments.is_empty() || spool.cursor.segment < spool.segments[0].0 {
            let first = spool.segments.front().map_or(spool.cursor.segment, |s| s.0);
            spool.cursor = Pos {
                segment: first,
                offset: if first == spool.cursor.segment {
                    spool.cursor.offset
                } else {
                    0
                },
            };
        }
        // Count what is left (bounded by max_bytes of lines, so by the spool size).
        let (count, oldest) = spool.scan_pending()?;
        spool.pending_events = count;
        spool.oldest_ts_us = oldest;
        Ok(spool)
    }

    fn seg_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("seg-{n:016}.jsonl"))
    }

    /// Bytes on disk not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        let total: u64 = self.segments.iter().map(|s| s.1).sum();
        let before = self
            .segments
            .iter()
            .find(|s| s.0 == self.cursor.segment)
            .map_or(0, |_| self.cursor.offset);
        total.saturating_sub(before)
    }

    /// Events not yet acknowledged.
    pub fn pending_events(&self) -> u64 {
        self.pending_events
    }

    /// Time of the oldest event not yet acknowledged.
    pub fn oldest_ts_us(&self) -> Option<u64> {
        self.oldest_ts_us
    }

    /// Sets the time of the oldest unacknowledged event (after an acknowledgement, from
    /// the next line).
    pub fn set_oldest_ts_us(&mut self, ts: Option<u64>) {
        self.oldest_ts_us = if self.pending_events == 0 { None } else { ts };
    }

    /// Appends one event line (without its newline). `Ok(false)`: the spool is full (or
    /// the line too long) and the event was not kept.
    pub fn append(&mut self, line: &[u8], ts_us: u64) -> Result<bool, SpoolError> {
        let len = line.len() as u64 + 1;
        if line.len() > MAX_LINE || self.pending_bytes() + len > self.max_bytes {
            return Ok(false);
        }
        let rotate = match self.segments.back() {
            None => true,
            Some(&(_, l)) => (l + len > self.segment_bytes && l > 0) || self.torn,
        };
        self.torn = false;
        if rotate || self.active.is_none() {
            let n = if rotate {
                self.segments
                    .back()
                    .map_or(self.cursor.segment, |s| s.0 + 1)
            } else {
                self.segments.back().map_or(0, |s| s.0)
            };
            let path = self.seg_path(n);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path))?;
            if rotate {
                self.segments.push_back((n, 0));
            }
            self.active = Some(file);
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let Some(file) = self.active.as_mut() else {
            return Ok(false);
        };
        let Some(last) = self.segments.back_mut() else {
            return Ok(false);
        };
        let path = self.dir.join(format!("seg-{:016}.jsonl", last.0));
        file.write_all(&buf).map_err(io(&path))?;
        last.1 += len;
        self.pending_events += 1;
        if self.oldest_ts_us.is_none() {
            self.oldest_ts_us = Some(ts_us);
        }
        Ok(true)
    }

    /// Up to `max` unacknowledged lines from the cursor, each with the position after it.
    pub fn read_batch(&mut self, max: usize) -> Result<Vec<(Pos, Vec<u8>)>, SpoolError> {
        let mut out = Vec::new();
        let mut pos = self.cursor;
        let segs: Vec<(u64, u64)> = self.segments.iter().copied().collect();
        for (n, len) in segs {
            if n < pos.segment || out.len() >= max {
                continue;
            }
            if n > pos.segment {
                pos = Pos {
                    segment: n,
                    offset: 0,
                };
            }
            if pos.offset >= len {
                continue;
            }
            let path = self.seg_path(n);
            let mut file = File::open(&path).map_err(io(&path))?;
            file.seek(SeekFrom::Start(pos.offset)).map_err(io(&path))?;
            let mut reader = BufReader::new(file.take(len - pos.offset));
            while out.len() < max {
                let mut line = Vec::new();
                let got = (&mut reader)
                    .take(MAX_LINE as u64 + 2)
                    .read_until(b'\n', &mut line)
                    .map_err(io(&path))?;
                if got == 0 {
                    break;
                }
                pos.offset += got as u64;
                if line.last() != Some(&b'\n') {
                    // A torn or overlong line (a crash in the middle of a write): skipped.
                    continue;
                }
                line.pop();
                out.push((pos, line));
            }
        }
        Ok(out)
    }

    /// Everything up to `upto` (a position [`read_batch`](Self::read_batch) returned) was
    /// acknowledged by the bus; `events` of them.
    pub fn ack(&mut self, upto: Pos, events: u64) -> Result<(), SpoolError> {
        if upto <= self.cursor {
            return Ok(());
        }
        self.cursor = upto;
        self.pending_events = self.pending_events.saturating_sub(events);
        if self.pending_events == 0 {
            self.oldest_ts_us = None;
        }
        let tmp = self.dir.join("cursor.tmp");
        let path = self.dir.join("cursor");
        {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            writeln!(f, "{} {}", upto.segment, upto.offset).map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        self.drop_consumed()
    }

    /// Deletes segments wholly before the cursor (never the one being written).
    fn drop_consumed(&mut self) -> Result<(), SpoolError> {
        while self.segments.len() > 1 {
            let Some(&(n, len)) = self.segments.front() else {
                break;
            };
            let consumed =
                n < self.cursor.segment || (n == self.cursor.segment && self.cursor.offset >= len);
            if !consumed {
                break;
            }
            let path = self.seg_path(n);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
            self.segments.pop_front();
            if self.cursor.segment == n
                && let Some(&(next, _)) = self.segments.front()
            {
                self.cursor = Pos {
                    segment: next,
                    offset: 0,
                };
            }
        }
        Ok(())
    }

    fn scan_pending(&mut self) -> Result<(u64, Option<u64>), SpoolError> {
        let mut count = 0u64;
        let mut oldest = None;
        let saved = self.cursor;
        loop {
            let batch = self.read_batch(4096)?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            if oldest.is_none() {
                oldest = batch.first().and_then(|(_, l)| ts_of(l));
            }
            count += batch.len() as u64;
            self.cursor = last;
        }
        self.cursor = saved;
        Ok((count, oldest))
    }
}

/// The `ts_us` of an event line, read cheaply.
pub fn ts_of(line: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Ts {
        ts_us: u64,
    }
    serde_json::from_slice::<Ts>(line).ok().map(|t| t.ts_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn line(i: u64) -> Vec<u8> {
        format!(r#"{{"ts_us":{i},"id":"x.{i}"}}"#).into_bytes()
    }

    #[test]
    fn survives_reopen_and_is_bounded() -> Result<(), SpoolError> {
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let d = dir.path().join("spool");
        let mut s = Spool::open(&d, 4096, 1024)?;
        let mut kept = 0;
        for i in 0..200 {
            if s.append(&line(i), i)? {
                kept += 1;
            }
        }
        assert!(kept > 50 && kept < 200, "{kept}");
        assert!(s.pending_bytes() <= 4096);
        let mode = fs::metadata(&d).map_err(io(&d))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let batch = s.read_batch(10)?;
        assert_eq!(batch.len(), 10);
        assert_eq!(batch[0].1, line(0));
        let (upto, _) = batch[9];
        s.ack(upto, 10)?;
        s.set_oldest_ts_us(Some(10));
        drop(s);
        let mut s = Spool::open(&d, 4096, 1024)?;
        assert_eq!(s.pending_events(), kept - 10);
        assert_eq!(s.oldest_ts_us(), Some(10));
        let mut seen = Vec::new();
        loop {
            let b = s.read_batch(7)?;
            let Some(&(p, _)) = b.last() else { break };
            let n = b.len() as u64;
            seen.extend(b.into_iter().map(|(_, l)| l));
            s.ack(p, n)?;
        }
        let want: Vec<Vec<u8>> = (10..kept).map(line).collect();
        assert_eq!(seen, want);
        assert_eq!(s.pending_events(), 0);
        // Room again once acknowledged.
        assert!(s.append(&line(999), 999)?);
        for entry in fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let mode = entry.metadata().map_err(io(&d))?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", entry.path().display());
        }
        Ok(())
    }
}
