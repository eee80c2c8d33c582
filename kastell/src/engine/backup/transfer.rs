//! Byte counts of artifact transfers, reported while a backup streams in
//! from the server and while a restore streams a backup out to it.
//!
//! A [`TransferProgress`] is a callback `(what, done, total)` carried by a
//! [`BackupRequest`](super::BackupRequest) or
//! [`RestoreRequest`](super::RestoreRequest). The engine wraps each
//! artifact's writer (backup) or reader (restore) in a counter that calls it.
//!
//! Throttling: a call at most once per [`REPORT_EVERY`] bytes (256 KiB) of
//! one artifact, plus one call with the final count when the artifact's
//! stream ends (or is dropped), so a 1 GiB artifact makes at most 4 097
//! calls however fast it moves, and a small one exactly one. The rule
//! counts bytes, not time, so what is reported does not depend on the
//! machine's speed; surfaces limit how often they show it (the MCP server
//! sends at most a few notifications per second, the CLI's spinner redraws
//! at its own pace).

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use kastell_core::Result;
use kastell_core::types::{AppData, AppSelection, ArtifactRecord, ArtifactSink, ArtifactSpec};
use kastell_core::wire::{DumpJobs, WireCodec, WirePlan};

/// Bytes between two reports of one artifact (256 KiB). Writes and reads
/// are also cut to at most this size, so a single large write still
/// reports as it goes.
pub const REPORT_EVERY: u64 = 256 * 1024;

/// The callback: what is being transferred, the bytes done, and the total
/// when it is known.
type Callback = dyn Fn(&str, u64, Option<u64>) + Send + Sync;

/// Whether the caller asked the transfer to stop.
type StopProbe = dyn Fn() -> bool + Send + Sync;

/// Where byte counts of transfers go, and whether a backup's download
/// should stop. The default reports nothing (and costs nothing: streams
/// are not wrapped). Cheap to clone.
#[derive(Clone, Default)]
pub struct TransferProgress(Option<Arc<Callback>>, Option<Arc<StopProbe>>);

impl fmt::Debug for TransferProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "TransferProgress(on)"
        } else {
            "TransferProgress(off)"
        })
    }
}

impl TransferProgress {
    /// Reports nothing.
    pub fn none() -> Self {
        Self(None, None)
    }

    /// Calls `report(what, done, total)` as transfers progress. `what` is
    /// a short phrase (`receiving coolify-db.dump`, `sending config.tar`),
    /// `done` grows with each call for the same transfer and ends at the
    /// transfer's final count. It must be quick and must not block.
    pub fn new(report: impl Fn(&str, u64, Option<u64>) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(report)), None)
    }

    /// Also stops what a backup receives as soon as `stop` answers true:
    /// the artifact's writer then fails with "cancelled" at its next chunk,
    /// so the backup fails like any interrupted one (nothing is listed,
    /// the staging directory is removed). Restores are never stopped
    /// mid-stream. Only takes effect when progress is reported.
    pub fn stopping_when(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.1 = Some(Arc::new(stop));
        self
    }

    /// Whether the stop probe says to stop (never without one).
    pub fn stop_requested(&self) -> bool {
        self.1.as_ref().is_some_and(|stop| stop())
    }

    /// Whether anything is reported.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// A meter for one transfer, or `None` when nothing is reported.
    fn meter(&self, what: String, total: Option<u64>) -> Option<Meter> {
        self.0.clone().map(|report| Meter {
            report,
            what,
            total,
            done: 0,
            reported: None,
        })
    }

    /// `writer`, counting what is written into it as `what` (`total` bytes
    /// when known).
    pub fn writer(
        &self,
        what: impl Into<String>,
        total: Option<u64>,
        writer: Box<dyn Write + Send>,
    ) -> Box<dyn Write + Send> {
        match self.meter(what.into(), total) {
            Some(meter) => Box::new(CountingWriter {
                inner: writer,
                meter,
                stop: self.1.clone(),
            }),
            None => writer,
        }
    }

    /// `reader`, counting what is read (or consumed) from it as `what`.
    pub fn reader<R>(&self, what: impl Into<String>, total: Option<u64>, reader: R) -> Counted<R> {
        Counted {
            inner: reader,
            meter: self.meter(what.into(), total),
        }
    }
}

/// An [`ArtifactSink`] that counts what the platform writes into each
/// artifact (`receiving <name>`, total unknown) before it reaches `inner`.
pub(super) struct ObservedSink<'a> {
    inner: &'a mut dyn ArtifactSink,
    progress: TransferProgress,
}

impl<'a> ObservedSink<'a> {
    /// Counts what is written into `inner`'s artifacts for `progress`.
    pub(super) fn new(inner: &'a mut dyn ArtifactSink, progress: TransferProgress) -> Self {
        Self { inner, progress }
    }
}

#[deny(clippy::missing_trait_methods)]
impl ArtifactSink for ObservedSink<'_> {
    fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>> {
        self.open_encoded(spec, WireCodec::Raw, "")
    }

    fn seal(&mut self, name: &str) -> Result<ArtifactRecord> {
        self.inner.seal(name)
    }

    fn wire(&self) -> &WirePlan {
        self.inner.wire()
    }

    fn apps(&self) -> &AppSelection {
        self.inner.apps()
    }

    fn assign_app(&mut self, name: &str, app: &AppData) -> Result<ArtifactRecord> {
        self.inner.assign_app(name, app)
    }

    fn dump_jobs(&self) -> DumpJobs {
        self.inner.dump_jobs()
    }

    fn open_encoded(
        &mut self,
        spec: &ArtifactSpec,
        codec: WireCodec,
        reason: &str,
    ) -> Result<Box<dyn Write + Send>> {
        let writer = self.inner.open_encoded(spec, codec, reason)?;
        Ok(self
            .progress
            .writer(format!("receiving {}", spec.name), None, writer))
    }
}

/// Counts one transfer's bytes and reports them, throttled.
struct Meter {
    report: Arc<Callback>,
    what: String,
    total: Option<u64>,
    done: u64,
    reported: Option<u64>,
}

impl Meter {
    fn add(&mut self, n: usize) {
        self.done = self.done.saturating_add(n as u64);
        if self.done - self.reported.unwrap_or(0) >= REPORT_EVERY {
            self.report();
        }
    }

    fn report(&mut self) {
        (self.report)(&self.what, self.done, self.total);
        self.reported = Some(self.done);
    }

    /// Reports the final count, unless it was the last one reported.
    fn finish(&mut self) {
        if self.reported != Some(self.done) {
            self.report();
        }
    }
}

/// A writer that counts and reports what passes through it, and fails
/// once its stop probe says so.
struct CountingWriter {
    inner: Box<dyn Write + Send>,
    meter: Meter,
    stop: Option<Arc<StopProbe>>,
}

/// The message of the error a stopped transfer fails with.
const CANCELLED: &str = "the transfer was cancelled";

impl Write for CountingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.stop.as_ref().is_some_and(|stop| stop()) {
            return Err(io::Error::other(CANCELLED));
        }
        let len = data.len().min(REPORT_EVERY as usize);
        let n = self.inner.write(&data[..len])?;
        self.meter.add(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for CountingWriter {
    fn drop(&mut self) {
        self.meter.finish();
    }
}

/// A reader that counts and reports what is read from it (through
/// [`Read`], or [`BufRead`] when the inner reader is buffered), and
/// reports the final count at its end or when dropped.
pub struct Counted<R> {
    inner: R,
    meter: Option<Meter>,
}

impl<R> fmt::Debug for Counted<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counted")
            .field("done", &self.meter.as_ref().map(|m| m.done))
            .finish_non_exhaustive()
    }
}

impl<R> Counted<R> {
    fn add(&mut self, n: usize) {
        if let Some(meter) = &mut self.meter {
            meter.add(n);
        }
    }

    fn finish(&mut self) {
        if let Some(meter) = &mut self.meter {
            meter.finish();
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.meter.is_none() {
            return self.inner.read(buf);
        }
        let len = buf.len().min(REPORT_EVERY as usize);
        let n = self.inner.read(&mut buf[..len])?;
        if n == 0 && len > 0 {
            self.finish();
        }
        self.add(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let at_end = self.inner.fill_buf()?.is_empty();
        if at_end {
            self.finish();
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
        self.add(amount);
    }
}

impl<R> Drop for Counted<R> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<(String, u64, Option<u64>)>>>;

    fn recording() -> (TransferProgress, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress = TransferProgress::new(move |what, done, total| {
            sink.lock().unwrap().push((what.to_owned(), done, total));
        });
        (progress, seen)
    }

    #[test]
    fn one_big_write_reports_every_256_kib_and_the_final_count() {
        let (progress, seen) = recording();
        let out = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let size = 3 * REPORT_EVERY as usize + 1000;
        let mut w = progress.writer("receiving a", None, Box::new(Shared(out.clone())));
        w.write_all(&vec![1u8; size]).unwrap();
        drop(w);
        assert_eq!(out.lock().unwrap().len(), size, "every byte passes");
        let seen = seen.lock().unwrap().clone();
        let counts: Vec<u64> = seen.iter().map(|s| s.1).collect();
        assert_eq!(
            counts,
            [
                REPORT_EVERY,
                2 * REPORT_EVERY,
                3 * REPORT_EVERY,
                size as u64
            ]
        );
        assert!(seen.iter().all(|s| s.0 == "receiving a" && s.2.is_none()));
    }

    #[test]
    fn a_buffered_reader_reports_consumed_bytes_once_at_the_end() {
        let (progress, seen) = recording();
        let data = vec![9u8; 600_000];
        let reader = io::BufReader::with_capacity(100_000, &data[..]);
        let mut counted = progress.reader("sending b", Some(600_000), reader);
        let mut back = Vec::new();
        counted.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let mut line = String::new();
        assert_eq!(counted.read_line(&mut line).unwrap(), 0);
        drop(counted);
        let counts: Vec<u64> = seen.lock().unwrap().iter().map(|s| s.1).collect();
        assert_eq!(counts, [REPORT_EVERY, 2 * REPORT_EVERY, 600_000]);
    }

    #[test]
    fn an_empty_transfer_reports_zero_and_off_reports_nothing() {
        let (progress, seen) = recording();
        drop(progress.reader("sending c", Some(0), &b""[..]));
        assert_eq!(
            seen.lock().unwrap().clone(),
            [("sending c".into(), 0, Some(0))]
        );
        let mut off = TransferProgress::none().reader("x", None, &b"abc"[..]);
        let mut back = Vec::new();
        off.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"abc");
        assert!(!TransferProgress::default().is_on());
    }
}
