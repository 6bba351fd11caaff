//! `server.data_max_age_ms`: removing files that no handoff ever claimed (SPEC §4.5
//! "Directory").
//!
//! PHP stages a file, then its request dies before the handoff reaches the daemon: nothing would
//! ever delete that file. Every [`SWEEP_INTERVAL`] a helper thread calls [`sweep`], which
//! removes regular files under `data_dir` last modified longer ago than the age. It walks by
//! directory fds: a symbolic link is never followed (nor removed: it is not a regular file), a
//! directory is entered but never removed, and nothing outside `data_dir` is reached.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::dir::DataDir;
use crate::sys::{at, dirlist};

/// How often the daemon's helper thread sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Subdirectories deeper than this are left alone: PHP stages files one or two levels down.
const MAX_DEPTH: usize = 16;
/// Names looked at per directory per sweep; the rest wait for the next sweep.
const MAX_ENTRIES: usize = 100_000;

/// What one sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub removed: u64,
    /// Entries that could not be looked at or removed.
    pub failed: u64,
    /// The first such failure, for the log.
    pub first_error: Option<io::Error>,
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} old files removed", self.removed)?;
        if self.failed > 0 {
            write!(f, ", {} could not be", self.failed)?;
            if let Some(error) = &self.first_error {
                write!(f, " (first: {error})")?;
            }
        }
        Ok(())
    }
}

impl SweepReport {
    fn failure(&mut self, error: io::Error) {
        self.failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

/// Removes every regular file under `dir` last modified more than `max_age` before `now`.
/// A zero `max_age` means the sweep is off: nothing is removed.
pub fn sweep(dir: &DataDir, max_age: Duration, now: SystemTime) -> SweepReport {
    let mut report = SweepReport::default();
    if !max_age.is_zero() {
        sweep_dir(dir.fd(), max_age, now, 0, &mut report);
    }
    report
}

/// The helper thread that sweeps `data_dir` while `data_max_age_ms` is set; a reload changes
/// what it sweeps. It starts with the first configuration that asks for a sweep and runs until
/// the process ends; it holds no fd between sweeps.
#[derive(Default)]
pub struct Sweeper {
    plan: Arc<Mutex<SweepPlan>>,
    running: bool,
}

#[derive(Debug, Clone, Default)]
struct SweepPlan {
    dir: Option<PathBuf>,
    max_age: Duration,
}

impl Sweeper {
    /// Sweeps `dir` every [`SWEEP_INTERVAL`], the first time at once, removing files older than
    /// `max_age` (zero or no directory: nothing is swept).
    pub fn configure(&mut self, dir: Option<&Path>, max_age: Duration) {
        let plan = SweepPlan {
            dir: dir.map(Path::to_path_buf),
            max_age,
        };
        let wanted = plan.dir.is_some() && !plan.max_age.is_zero();
        match self.plan.lock() {
            Ok(mut shared) => *shared = plan,
            Err(poisoned) => *poisoned.into_inner() = plan,
        }
        if wanted && !self.running {
            let plan = Arc::clone(&self.plan);
            let spawned = std::thread::Builder::new()
                .name("sweeper".into())
                .spawn(move || sweep_forever(&plan));
            match spawned {
                Ok(_) => self.running = true,
                Err(error) => log::error!(
                    error:% = error;
                    "cannot start the data_dir sweeper thread: old attachment files stay"
                ),
            }
        }
    }
}

fn sweep_forever(plan: &Mutex<SweepPlan>) {
    loop {
        let SweepPlan { dir, max_age } = match plan.lock() {
            Ok(plan) => plan.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let (Some(path), false) = (dir, max_age.is_zero()) {
            match DataDir::open(&path) {
                Ok((dir, _)) => {
                    let report = sweep(&dir, max_age, SystemTime::now());
                    if report.failed > 0 {
                        log::warn!(data_dir:? = path, report:% = report; "data_dir swept");
                    } else if report.removed > 0 {
                        log::info!(data_dir:? = path, report:% = report; "data_dir swept");
                    }
                }
                Err(error) => {
                    log::warn!(data_dir:? = path, error:% = error; "data_dir cannot be swept")
                }
            }
        }
        std::thread::sleep(SWEEP_INTERVAL);
    }
}

fn sweep_dir(
    dir: BorrowedFd<'_>,
    max_age: Duration,
    now: SystemTime,
    depth: usize,
    report: &mut SweepReport,
) {
    let names = match dirlist::list(dir, MAX_ENTRIES) {
        Ok(names) => names,
        Err(error) => return report.failure(error),
    };
    for name in names {
        let stat = match at::fstatat_nofollow(dir, &name) {
            Ok(stat) => stat,
            // Gone since it was listed: a handoff took it.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                report.failure(error);
                continue;
            }
        };
        if stat.is_regular() {
            let old = now
                .duration_since(stat.modified())
                .is_ok_and(|age| age > max_age);
            if old {
                // A directory swapped in since is `EISDIR`: never removed.
                match at::unlinkat(dir, &name) {
                    Ok(()) => report.removed += 1,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => report.failure(error),
                }
            }
        } else if stat.is_dir() && depth < MAX_DEPTH {
            // O_NOFOLLOW: a link swapped in since is not entered.
            match at::openat(
                dir,
                &name,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            ) {
                Ok(sub) => sweep_dir(sub.as_fd(), max_age, now, depth + 1, report),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => report.failure(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::testing::TempDir;
    use std::fs::{File, FileTimes};

    fn age(temp: &TempDir, name: &str, when: SystemTime) {
        let path = temp.path().join(name);
        let file = File::options().write(true).open(path).unwrap();
        file.set_times(FileTimes::new().set_modified(when)).unwrap();
    }

    #[test]
    fn old_regular_files_go_links_directories_and_new_files_stay() {
        let temp = TempDir::new("sweep");
        let outside = TempDir::new("sweep-outside");
        outside.write("victim.txt", b"keep me");
        let now = SystemTime::now();
        let old = now - Duration::from_secs(3600);
        temp.write("old.png", b"x");
        temp.write("new.png", b"x");
        temp.write("sub/deeper/old.txt", b"x");
        temp.write("sub/new.txt", b"x");
        temp.mkfifo("fifo");
        for name in ["old.png", "sub/deeper/old.txt"] {
            age(&temp, name, old);
        }
        age(&outside, "victim.txt", old);
        std::os::unix::fs::symlink(
            outside.path().join("victim.txt"),
            temp.path().join("link.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), temp.path().join("linkdir")).unwrap();
        let (dir, _) = DataDir::open(temp.path()).unwrap();

        let report = sweep(&dir, Duration::from_secs(60), now);
        assert_eq!(report.removed, 2, "{report}");
        assert_eq!(report.failed, 0, "{report}");
        assert_eq!(
            temp.listing(),
            [
                "fifo",
                "link.txt",
                "linkdir",
                "new.png",
                "sub/",
                "sub/deeper/",
                "sub/new.txt"
            ]
        );
        assert!(outside.exists("victim.txt"));

        // Everything is younger than a day; and zero is off.
        temp.write("again.png", b"x");
        age(&temp, "again.png", old);
        assert_eq!(sweep(&dir, Duration::from_secs(86_400), now).removed, 0);
        assert_eq!(sweep(&dir, Duration::ZERO, now).removed, 0);
        assert!(temp.exists("again.png"));
        let later = now + Duration::from_secs(10);
        assert_eq!(sweep(&dir, Duration::from_secs(1), later).removed, 3);
        assert_eq!(
            temp.listing(),
            ["fifo", "link.txt", "linkdir", "sub/", "sub/deeper/"]
        );
    }
}
