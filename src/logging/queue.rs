//! The one bounded queue between every thread that logs and the thread that writes to stderr.
//!
//! Logging must never stall the event loop: a wedged journald or a full pipe would otherwise
//! freeze every stream at its next log call. A producer only copies its finished line in under
//! a short lock; a line that does not fit is dropped and counted, and the next line that fits
//! is preceded by a notice of how many went missing. The writer thread takes everything queued
//! as one batch and writes it with one `write_all`, so lines never interleave and a blocking
//! write stalls only that thread.
//!
//! The capacity covers the batch being written too, so the memory held for logging stays
//! within it however long a write blocks.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The writer's buffer is kept at most this large between batches.
const BATCH_KEPT: usize = 64 * 1024;

pub struct Queue {
    state: Mutex<State>,
    /// Signalled when lines are queued: the writer waits on it.
    queued: Condvar,
    /// Signalled when a batch has been written: `flush` waits on it.
    written: Condvar,
    /// Bytes of lines queued or being written, at most.
    capacity: usize,
    /// Lines dropped since start, for `daemon_log_lines_dropped_total`.
    dropped: AtomicU64,
}

struct State {
    lines: Vec<u8>,
    /// Bytes of the batch the writer took and has not finished writing.
    writing: usize,
    /// Lines dropped since the last notice.
    unreported: u64,
}

impl Queue {
    pub const fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                lines: Vec::new(),
                writing: 0,
                unreported: 0,
            }),
            queued: Condvar::new(),
            written: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `line`, preceded by `notice(n)` when `n` lines were dropped since the last notice.
    /// Returns false, and counts the line, when the two do not fit.
    pub fn push(&self, line: &[u8], notice: impl FnOnce(u64) -> Vec<u8>) -> bool {
        let mut state = self.lock();
        let used = state.lines.len() + state.writing;
        let notice = match state.unreported {
            0 => Vec::new(),
            count => notice(count),
        };
        if used + notice.len() + line.len() > self.capacity {
            state.unreported += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        state.unreported = 0;
        state.lines.extend_from_slice(&notice);
        state.lines.extend_from_slice(line);
        drop(state);
        self.queued.notify_one();
        true
    }

    /// Waits until lines are queued, then writes all of them to `out` with one `write_all`.
    /// `batch` is the writer's buffer, kept between calls so that its allocation is reused. A
    /// failed write loses that batch: there is nowhere else to report it.
    pub fn write_batch(&self, out: &mut impl Write, batch: &mut Vec<u8>) -> io::Result<()> {
        let mut state = self.lock();
        while state.lines.is_empty() {
            state = self
                .queued
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        batch.clear();
        std::mem::swap(&mut state.lines, batch);
        state.writing = batch.len();
        drop(state);

        let result = out.write_all(batch).and_then(|()| out.flush());

        self.lock().writing = 0;
        self.written.notify_all();
        // After a burst the buffer would keep its size for good (and, swapped with the
        // queue's, double what logging holds at rest): a quiet daemon keeps a small one.
        batch.clear();
        batch.shrink_to(BATCH_KEPT);
        result
    }

    /// Waits at most `limit` until everything queued has been written; returns whether it was.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        while !state.lines.is_empty() || state.writing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.written.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Lines dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A thread that panicked while holding the lock (it cannot: nothing in the critical
    /// sections panics) must not silence logging for good.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;

    const LIMIT: Duration = Duration::from_secs(10);

    fn notice(count: u64) -> Vec<u8> {
        format!("dropped {count}\n").into_bytes()
    }

    fn no_notice(_: u64) -> Vec<u8> {
        panic!("no notice expected")
    }

    /// A sink that records each write call.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
    }

    impl Write for Recorder {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.writes.push(data.to_vec());
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink like a stderr nobody reads: each write announces itself, then waits until the
    /// test lets it finish.
    struct Stalled {
        entered: mpsc::Sender<Vec<u8>>,
        release: mpsc::Receiver<()>,
    }

    impl Write for Stalled {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let _ = self.entered.send(data.to_vec());
            self.release
                .recv_timeout(LIMIT)
                .map_err(|_| io::Error::other("never released"))?;
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_write_per_batch_in_order() {
        let queue = Queue::new(1024);
        assert!(queue.push(b"one\n", no_notice));
        assert!(queue.push(b"two\n", no_notice));
        let mut out = Recorder::default();
        let mut batch = Vec::new();
        queue.write_batch(&mut out, &mut batch).unwrap();
        assert!(queue.push(b"three\n", no_notice));
        queue.write_batch(&mut out, &mut batch).unwrap();
        assert_eq!(out.writes, [b"one\ntwo\n".to_vec(), b"three\n".to_vec()]);
        assert!(queue.flush(Duration::ZERO));
    }

    #[test]
    fn a_full_queue_drops_counts_and_then_says_so() {
        let queue = Queue::new(20);
        assert!(queue.push(b"fifteen bytes!\n", no_notice));
        assert!(!queue.push(b"67890\n", no_notice));
        assert!(!queue.push(b"x\n", notice));
        assert_eq!(queue.dropped(), 2);
        let mut out = Recorder::default();
        queue.write_batch(&mut out, &mut Vec::new()).unwrap();
        // Fits alone but not behind its notice: dropped too, and counted in the next notice.
        assert!(!queue.push(b"fifteen again!\n", notice));
        assert!(queue.push(b"ok\n", notice));
        assert!(queue.push(b"ok2\n", no_notice));
        queue.write_batch(&mut out, &mut Vec::new()).unwrap();
        assert_eq!(out.writes[1], b"dropped 3\nok\nok2\n");
        assert_eq!(queue.dropped(), 3);
    }

    #[test]
    fn a_line_larger_than_the_queue_is_dropped() {
        let queue = Queue::new(4);
        assert!(!queue.push(b"12345\n", no_notice));
        assert_eq!(queue.dropped(), 1);
        assert!(queue.flush(Duration::ZERO));
    }

    #[test]
    fn a_stalled_write_blocks_only_the_writer_and_counts_against_the_capacity() {
        let queue = Arc::new(Queue::new(8));
        let (entered, writing) = mpsc::channel();
        let (release, released) = mpsc::channel();
        let writer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                let mut out = Stalled {
                    entered,
                    release: released,
                };
                let mut batch = Vec::new();
                for _ in 0..2 {
                    queue.write_batch(&mut out, &mut batch).unwrap();
                }
            })
        };
        assert!(queue.push(b"12345\n", no_notice));
        assert_eq!(writing.recv_timeout(LIMIT).unwrap(), b"12345\n");
        // The writer is stuck with 6 of the 8 bytes: pushing neither blocks nor exceeds them.
        assert!(queue.push(b"a\n", no_notice));
        assert!(!queue.push(b"b\n", no_notice));
        assert!(!queue.flush(Duration::from_millis(20)));
        release.send(()).unwrap();
        assert_eq!(writing.recv_timeout(LIMIT).unwrap(), b"a\n");
        release.send(()).unwrap();
        writer.join().unwrap();
        assert!(queue.flush(LIMIT));
        assert_eq!(queue.dropped(), 1);
    }

    #[test]
    fn a_failed_write_loses_its_batch_only() {
        let queue = Queue::new(16);
        assert!(queue.push(b"lost\n", no_notice));
        let mut batch = Vec::new();
        assert!(queue.write_batch(&mut Closed, &mut batch).is_err());
        assert!(queue.flush(Duration::ZERO));
        assert!(queue.push(b"kept\n", no_notice));
        let mut out = Recorder::default();
        queue.write_batch(&mut out, &mut batch).unwrap();
        assert_eq!(out.writes, [b"kept\n".to_vec()]);
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn lines_from_many_threads_stay_whole() {
        let queue = Arc::new(Queue::new(4096));
        let threads = 4;
        let per_thread = 500;
        let producers: Vec<_> = (0..threads)
            .map(|t| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    let mut queued = 0u64;
                    for i in 0..per_thread {
                        let line = format!("thread={t} line={i} {}\n", "x".repeat(i % 50));
                        queued += u64::from(queue.push(line.as_bytes(), notice));
                    }
                    queued
                })
            })
            .collect();
        let mut out = Recorder::default();
        let mut batch = Vec::new();
        let mut queued = 0;
        for producer in producers {
            while !producer.is_finished() {
                // Only this thread writes, so a non-empty queue means `write_batch` cannot wait.
                if !queue.lock().lines.is_empty() {
                    queue.write_batch(&mut out, &mut batch).unwrap();
                }
                std::thread::yield_now();
            }
            queued += producer.join().unwrap();
        }
        if !queue.lock().lines.is_empty() {
            queue.write_batch(&mut out, &mut batch).unwrap();
        }
        let written: Vec<u8> = out.writes.concat();
        let text = String::from_utf8(written).unwrap();
        let mut lines = 0;
        let mut noticed = 0;
        for line in text.lines() {
            if let Some(count) = line.strip_prefix("dropped ") {
                noticed += count.parse::<u64>().unwrap();
                continue;
            }
            lines += 1;
            let (head, tail) = line.rsplit_once(' ').unwrap();
            assert!(head.starts_with("thread="), "{line:?}");
            assert!(tail.bytes().all(|b| b == b'x'), "{line:?}");
        }
        assert_eq!(lines, queued);
        assert_eq!(queued + queue.dropped(), threads * per_thread as u64);
        // Drops after the last notice are reported with the next line, which never came.
        assert!(noticed <= queue.dropped());
    }
}
