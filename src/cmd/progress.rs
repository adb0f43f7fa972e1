//! A progress line on standard error for long capture files, shown only on a terminal.

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Files smaller than this finish before a progress line would help.
const MIN_SIZE: u64 = 64 << 20;

/// Counts the bytes read through it.
pub struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The progress line of one file; cleared when dropped.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Wraps `inner` (a file of `size` bytes named `name`); draws progress only when
    /// standard error is a terminal and the file is large.
    pub fn wrap<R: Read>(inner: R, name: &str, size: u64) -> (Counting<R>, Progress) {
        let read = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let reader = Counting {
            inner,
            read: read.clone(),
        };
        let thread = (std::io::stderr().is_terminal() && size >= MIN_SIZE).then(|| {
            let (name, done) = (name.to_string(), done.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    let n = read.load(Ordering::Relaxed);
                    let secs = start.elapsed().as_secs_f64().max(0.001);
                    say_err_inline!(
                        "\r{name}: {:5.1}%  {:.0} MB of {:.0} MB  {:.0} MB/s ",
                        n as f64 * 100.0 / size as f64,
                        n as f64 / 1e6,
                        size as f64 / 1e6,
                        n as f64 / 1e6 / secs
                    );
                }
                say_err_inline!("\r\x1b[2K");
            })
        });
        (reader, Progress { done, thread })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
