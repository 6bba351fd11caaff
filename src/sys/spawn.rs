//! Starting the new executable of an upgrade with our listeners (SPEC §6.3 step 1).
//!
//! The child gets the fds we give as 3, 4, 5…, named by `LISTEN_FDNAMES`, with `LISTEN_FDS` and
//! `LISTEN_PID` set to its own pid, the way systemd passes sockets: `sys::activation` in the new
//! process takes them. `LISTEN_PID` can only be written between `fork` and `exec`, so this is a
//! hand-written fork/exec rather than `std::process::Command`, whose environment is fixed before
//! the fork. Everything the child needs (argv, envp, the slots for the pid digits, scratch
//! space) is allocated before the fork; the child only runs async-signal-safe calls (`fcntl`,
//! `dup2`, `sigprocmask`, `signal`, `getpid`, `execve`, `write`, `_exit`) and plain stores, so
//! it is sound even though other threads may hold the allocator's lock at the moment of the
//! fork.
//!
//! Every other fd is close-on-exec: ours are opened that way, and the child also marks the rest
//! (`close_range(CLOSE_RANGE_CLOEXEC)`, where the kernel has it) in case a library did not.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitStatus;

use super::check;

/// Room for a pid's decimal digits (a pid is below 2^22 on Linux; a u32 has 10 digits).
const PID_DIGITS: usize = 10;
/// Variables we always set ourselves: a value inherited from our own start would be stale.
const LISTEN_VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// A started child. Dropping it leaves the process running (after a successful upgrade it is
/// the service); only `try_wait` reaps it.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    /// Set once reaped: from then on the pid may belong to someone else.
    status: Option<ExitStatus>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Whether it has exited, without waiting (`waitpid(WNOHANG)`); reaps it when it has.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let mut raw = 0;
        // SAFETY: `raw` is valid for writes; `self.pid` is our unreaped child.
        let pid = check(unsafe { libc::waitpid(self.pid, &mut raw, libc::WNOHANG) })?;
        if pid == 0 {
            return Ok(None);
        }
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        Ok(Some(status))
    }

    /// SIGKILL, unless it is already reaped (its pid could then be someone else's). Reap it
    /// afterwards with `try_wait`.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: plain syscall; the pid is our child and not yet reaped, so it is still ours.
        check(unsafe { libc::kill(self.pid, libc::SIGKILL) })?;
        Ok(())
    }
}

#[derive(Debug)]
pub enum SpawnError {
    /// A NUL byte in the path, an argument or a variable, a `=` in a variable's name, or a `:`
    /// in an fd name.
    Invalid(String),
    Pipe(io::Error),
    Fork(io::Error),
    /// The child could not set up its fds or `execve` failed.
    Exec(PathBuf, io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Invalid(what) => write!(f, "cannot start the new process: {what}"),
            SpawnError::Pipe(e) => write!(f, "cannot create a pipe to start the new process: {e}"),
            SpawnError::Fork(e) => write!(
                f,
                "cannot fork the new process: {e}; check memory and the process limit"
            ),
            SpawnError::Exec(path, e) => write!(
                f,
                "cannot run {}: {e}; check that the new binary is in place and executable",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Starts `exe` (an absolute path) with `args` (not counting argv[0], which is `exe`), our
/// environment plus `env` (which wins), and `fds` as 3, 4, … with their names in
/// `LISTEN_FDNAMES`. `LISTEN_PID` (and `WATCHDOG_PID` when the environment has it) is set to the
/// child's pid. Returns once the child has exec'd, or with the reason it could not.
///
/// Blocks only until the child's `execve` (a `CLOEXEC` pipe reports a failure), as
/// `std::process::Command::spawn` does.
pub fn spawn(
    exe: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    fds: &[(&str, BorrowedFd<'_>)],
) -> Result<Child, SpawnError> {
    let exe_c = c_string(exe.as_os_str(), "the executable path")?;
    let mut argv_c = vec![exe_c.clone()];
    for arg in args {
        argv_c.push(c_string(arg, "an argument")?);
    }
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());

    let mut environment = Environment::build(std::env::vars_os(), env, fds)?;
    let (envp, slots) = environment.pointers();

    let sources: Vec<libc::c_int> = fds.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    let mut scratch: Vec<libc::c_int> = vec![-1; sources.len()];
    // SAFETY: all-zero is a valid sigset_t, and sigemptyset initialises it.
    let empty_mask = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    };
    let (error_read, error_write) = pipe(0).map_err(SpawnError::Pipe)?;

    let plan = ChildPlan {
        exe: exe_c.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        pid_slots: slots,
        sources: sources.as_ptr(),
        scratch: scratch.as_mut_ptr(),
        count: sources.len(),
        error_fd: error_write.as_raw_fd(),
        empty_mask: &empty_mask,
    };

    // SAFETY: fork has no preconditions; in the child only `run_child` runs, which keeps to
    // async-signal-safe calls and memory allocated above.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the child of the fork; `plan` points at memory that was allocated
        // before the fork and is still alive in our copy of the address space.
        unsafe { run_child(&plan) }
    }
    let pid = check(pid).map_err(SpawnError::Fork)?;
    // Our copy of the write end must go, so that the read below ends at the child's exec.
    drop(error_write);
    let mut child = Child { pid, status: None };
    match read_exec_error(&error_read) {
        Ok(None) => Ok(child),
        Ok(Some(errno)) => {
            // The child has already called _exit: reap it so that no zombie stays.
            reap_blocking(&mut child);
            Err(SpawnError::Exec(
                exe.to_path_buf(),
                io::Error::from_raw_os_error(errno),
            ))
        }
        Err(e) => {
            // We cannot tell whether it exec'd: do not leave an unknown process running.
            let _ = child.kill();
            reap_blocking(&mut child);
            Err(SpawnError::Exec(exe.to_path_buf(), e))
        }
    }
    // `argv_c`, `environment`, `sources` and `scratch` live until here, past the fork: the
    // pointers in `plan` stay valid for the child.
}

/// The path this process was started from, made absolute, without resolving symlinks: an
/// upgrade starts whatever is at that path then (a replaced binary, or a symlink moved to a new
/// release). `/proc/self/exe` would name the old, possibly deleted, file. Call it at start-up,
/// before anything changes the working directory.
pub fn startup_executable() -> io::Result<PathBuf> {
    let argv0 = std::env::args_os()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "argv[0] is missing"))?;
    let cwd = std::env::current_dir()?;
    resolve_executable(
        &argv0,
        &cwd,
        std::env::var_os("PATH").as_deref(),
        is_executable,
    )
    .ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "cannot find {:?} in PATH; start the daemon by its full path",
                argv0.to_string_lossy()
            ),
        )
    })
}

/// `argv[0]` made absolute as the shell found it: with a `/`, relative to `cwd`; without, the
/// first executable file of that name in `path_var` (an empty entry meaning `cwd`).
pub fn resolve_executable(
    argv0: &OsStr,
    cwd: &Path,
    path_var: Option<&OsStr>,
    is_executable: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if argv0.is_empty() {
        return None;
    }
    if argv0.as_bytes().contains(&b'/') {
        return Some(absolute(cwd, Path::new(argv0)));
    }
    let path_var = path_var?;
    path_var
        .as_bytes()
        .split(|b| *b == b':')
        .map(|dir| absolute(cwd, Path::new(OsStr::from_bytes(dir))).join(argv0))
        .find(|candidate| is_executable(candidate))
}

/// `path` relative to `cwd`, with `.` components dropped; `..` is kept, because it means
/// something else after a symlink.
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    cwd.join(path)
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A pipe whose ends are close-on-exec, the read end non-blocking when `read_flags` has
/// `O_NONBLOCK`: the upgrade pipe (the write end is passed to the child as `upgrade`, which the
/// `dup2` there makes inheritable) and the exec-error pipe.
pub fn pipe(read_flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if read_flags & libc::O_NONBLOCK != 0 {
        super::socket::set_nonblocking(std::os::fd::AsFd::as_fd(&read))?;
    }
    Ok((read, write))
}

/// The pipe for SPEC §6.3: the new process writes `READY=1\n` to the write end and closes it.
/// The read end is non-blocking, for the event loop.
pub fn upgrade_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    pipe(libc::O_NONBLOCK)
}

fn c_string(value: &OsStr, what: &str) -> Result<CString, SpawnError> {
    CString::new(value.as_bytes())
        .map_err(|_| SpawnError::Invalid(format!("{what} contains a NUL byte")))
}

/// The child's `envp`: `KEY=value\0` strings, two of which have room for a pid written after
/// the fork.
struct Environment {
    entries: Vec<Vec<u8>>,
    /// Indexes into `entries` of `LISTEN_PID=` and `WATCHDOG_PID=`, whose digits go after the
    /// `=`.
    pid_entries: Vec<(usize, usize)>,
}

impl Environment {
    fn build(
        inherited: impl Iterator<Item = (OsString, OsString)>,
        extra: &[(OsString, OsString)],
        fds: &[(&str, BorrowedFd<'_>)],
    ) -> Result<Environment, SpawnError> {
        let ours = |key: &OsStr| LISTEN_VARIABLES.iter().any(|v| key == *v);
        let overridden = |key: &OsStr| ours(key) || extra.iter().any(|(k, _)| k == key);
        let mut variables: Vec<(OsString, OsString)> =
            inherited.filter(|(key, _)| !overridden(key)).collect();
        variables.extend(extra.iter().filter(|(key, _)| !ours(key)).cloned());

        let mut entries = Vec::new();
        let mut pid_entries = Vec::new();
        let mut pid_entry = |entries: &mut Vec<Vec<u8>>, key: &str| {
            let mut entry = format!("{key}=").into_bytes();
            let prefix = entry.len();
            // Digits and the terminating NUL are written after the fork.
            entry.resize(prefix + PID_DIGITS + 1, 0);
            pid_entries.push((entries.len(), prefix));
            entries.push(entry);
        };
        for (key, value) in variables {
            if key.as_bytes().is_empty() || key.as_bytes().contains(&b'=') {
                return Err(SpawnError::Invalid(format!(
                    "the variable name {:?} is empty or contains '='",
                    key.to_string_lossy()
                )));
            }
            if key == "WATCHDOG_PID" {
                // Systemd's watchdog now expects the new process, as with LISTEN_PID.
                pid_entry(&mut entries, "WATCHDOG_PID");
                continue;
            }
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            if entry.contains(&0) {
                return Err(SpawnError::Invalid(format!(
                    "the variable {:?} contains a NUL byte",
                    key.to_string_lossy()
                )));
            }
            entry.push(0);
            entries.push(entry);
        }
        if !fds.is_empty() {
            if let Some((name, _)) = fds
                .iter()
                .find(|(name, _)| name.is_empty() || name.contains([':', '\0']))
            {
                return Err(SpawnError::Invalid(format!(
                    "the fd name {name:?} is empty or contains ':'"
                )));
            }
            let names: Vec<&str> = fds.iter().map(|(name, _)| *name).collect();
            entries.push(format!("LISTEN_FDS={}\0", fds.len()).into_bytes());
            entries.push(format!("LISTEN_FDNAMES={}\0", names.join(":")).into_bytes());
            pid_entry(&mut entries, "LISTEN_PID");
        }
        Ok(Environment {
            entries,
            pid_entries,
        })
    }

    /// The null-terminated `envp`, and where the pids go (null: unused). Takes each buffer's
    /// pointer once, mutably, so that the slots written in the child and the pointers execve
    /// reads are the same pointers. They stay valid while `self` lives and is not changed.
    fn pointers(&mut self) -> (Vec<*const libc::c_char>, [*mut u8; 2]) {
        let mut slots = [std::ptr::null_mut(); 2];
        let mut next_slot = slots.iter_mut();
        let mut pointers = Vec::with_capacity(self.entries.len() + 1);
        for (index, entry) in self.entries.iter_mut().enumerate() {
            let start = entry.as_mut_ptr();
            if let Some((_, prefix)) = self.pid_entries.iter().find(|(i, _)| *i == index) {
                if let Some(slot) = next_slot.next() {
                    // SAFETY: `prefix` is within the entry, which has PID_DIGITS + 1 bytes
                    // after it.
                    *slot = unsafe { start.add(*prefix) };
                }
            }
            pointers.push(start.cast_const().cast());
        }
        pointers.push(std::ptr::null());
        (pointers, slots)
    }
}

/// What the child needs, as raw pointers into memory allocated before the fork.
struct ChildPlan {
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// Where to write the child's pid (null: unused), each with PID_DIGITS + 1 bytes of room.
    pid_slots: [*mut u8; 2],
    /// The fds to pass, in order, and as much scratch space.
    sources: *const libc::c_int,
    scratch: *mut libc::c_int,
    count: usize,
    error_fd: libc::c_int,
    empty_mask: *const libc::sigset_t,
}

/// The child's side: arrange the fds, write the pid, exec. Never returns.
///
/// # Safety
/// Only in the child of a fork, with `plan`'s pointers valid as `spawn` sets them up.
unsafe fn run_child(plan: &ChildPlan) -> ! {
    // The passed fds end up at 3..3+count; everything we need meanwhile must sit above that,
    // or a dup2 would close it.
    let above = 3 + plan.count as libc::c_int;
    // SAFETY (whole function): only async-signal-safe calls, and reads and writes within the
    // buffers `spawn` allocated for exactly this.
    unsafe {
        let error_fd = libc::fcntl(plan.error_fd, libc::F_DUPFD_CLOEXEC, above);
        if error_fd < 0 {
            libc::_exit(127);
        }
        let fail = |error_fd: libc::c_int| -> ! {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            let bytes = errno.to_ne_bytes();
            libc::write(error_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        };
        // Two passes, so that a source fd inside 3..3+count is copied before it is replaced.
        for i in 0..plan.count {
            let copy = libc::fcntl(*plan.sources.add(i), libc::F_DUPFD_CLOEXEC, above);
            if copy < 0 {
                fail(error_fd);
            }
            *plan.scratch.add(i) = copy;
        }
        for i in 0..plan.count {
            // dup2 clears FD_CLOEXEC on the new fd: these are the ones the program inherits.
            if libc::dup2(*plan.scratch.add(i), 3 + i as libc::c_int) < 0 {
                fail(error_fd);
            }
        }
        // Anything above that a library opened without O_CLOEXEC does not leak either. Old
        // kernels lack close_range: then we rely on our own fds being close-on-exec.
        libc::syscall(
            libc::SYS_close_range,
            above as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        // The daemon blocks its signals for its signalfd and ignores SIGPIPE; both survive
        // exec, so give the new program a clean start, as std::process does.
        libc::sigprocmask(libc::SIG_SETMASK, plan.empty_mask, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);

        let mut digits = [0u8; PID_DIGITS];
        let length = format_decimal(libc::getpid() as u32, &mut digits);
        for slot in plan.pid_slots {
            if slot.is_null() {
                continue;
            }
            for (i, digit) in digits.iter().take(length).enumerate() {
                slot.add(i).write(*digit);
            }
            slot.add(length).write(0);
        }
        libc::execve(plan.exe, plan.argv, plan.envp);
        fail(error_fd)
    }
}

/// Writes `value` in decimal at the start of `out`; returns how many digits. No allocation
/// and no panic path: it runs between fork and exec.
fn format_decimal(mut value: u32, out: &mut [u8; PID_DIGITS]) -> usize {
    let mut reversed = [0u8; PID_DIGITS];
    let mut length = 0;
    loop {
        if let Some(place) = reversed.get_mut(length) {
            *place = b'0' + (value % 10) as u8;
            length += 1;
        }
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for (place, digit) in out.iter_mut().zip(reversed.iter().take(length).rev()) {
        *place = *digit;
    }
    length
}

/// `Ok(None)` when the pipe closed without data (the child exec'd), `Ok(Some(errno))` when
/// the child reported a failure.
fn read_exec_error(pipe: &OwnedFd) -> io::Result<Option<i32>> {
    let mut bytes = [0u8; 4];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: `rest` is valid for writes of its length.
        let n = unsafe { libc::read(pipe.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            0 if filled == 0 => return Ok(None),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "short error report",
                ))
            }
            n if n > 0 => filled += n as usize,
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(Some(i32::from_ne_bytes(bytes)))
}

/// Waits for a child that is exiting now (it reported a failure, or was just killed).
fn reap_blocking(child: &mut Child) {
    let mut raw = 0;
    loop {
        // SAFETY: `raw` is valid for writes; the pid is our unreaped child.
        let result = unsafe { libc::waitpid(child.pid, &mut raw, 0) };
        if result == child.pid {
            child.status = Some(ExitStatus::from_raw(raw));
            return;
        }
        if result < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use crate::config::SocketType;
    use crate::sys::socket;

    /// Reaps `child`, polling for at most 10 s (its exit is what the test waits for).
    fn wait_exit(child: &mut Child) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit",
                child.id()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        text
    }

    fn sh(script: &str) -> Vec<OsString> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn the_child_sees_its_fds_at_3_and_up_with_their_names_and_its_own_pid() {
        let (out_read, out_write) = pipe(0).unwrap();
        let (listener, _peer) = socket::unix_pair(SocketType::Stream).unwrap();
        // A source fd number inside 3..5 is likely here (tests start with few fds): the
        // two-pass dup must not clobber it. The fds are listed by `ls` on the shell's own fd
        // paths after an `exec` (with `exec`, redirections are permanent, and `ls -ln` on
        // symlink arguments opens no directory): whatever leaked would be listed.
        let script =
            "echo \"$LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES $WATCHDOG_PID $EXTRA\" >&3; \
                      exec ls -ln /proc/$$/fd/* >&3 2>/dev/null";
        let env = [
            (OsString::from("EXTRA"), OsString::from("x y")),
            (OsString::from("WATCHDOG_PID"), OsString::from("1")),
        ];
        let mut child = spawn(
            Path::new("/bin/sh"),
            &sh(script),
            &env,
            &[("out", out_write.as_fd()), ("handoff", listener.as_fd())],
        )
        .unwrap();
        drop(out_write);
        let text = read_all(out_read);
        // `ls` exits 2: the shell's own fds (the glob's directory, dash's saved fds) are closed
        // on exec, so their paths no longer exist.
        wait_exit(&mut child);

        let mut lines = text.lines();
        let pid = child.id().to_string();
        let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
        assert_eq!(
            first,
            [
                pid.as_str(),
                pid.as_str(),
                "2",
                "out:handoff",
                pid.as_str(),
                "x",
                "y"
            ],
            "{text}"
        );
        // One "… /proc/PID/fd/N -> target" line per open fd.
        let mut fds: Vec<(u32, String)> = lines
            .filter_map(|line| {
                let (left, target) = line.split_once(" -> ")?;
                let number = left.rsplit('/').next()?.parse().ok()?;
                Some((number, target.to_string()))
            })
            .collect();
        fds.sort();
        let numbers: Vec<u32> = fds.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4], "{text}");
        assert!(fds[3].1.starts_with("pipe:"), "{text}");
        assert!(fds[4].1.starts_with("socket:"), "{text}");
    }

    #[test]
    fn inherited_listen_variables_are_replaced_and_absent_without_fds() {
        let (out_read, out_write) = pipe(0).unwrap();
        let script = "echo \"${LISTEN_PID-unset} ${LISTEN_FDS-unset} ${WATCHDOG_PID-unset}\" >&3";
        // With one fd (the output pipe) LISTEN_* are ours, whatever the caller passed.
        let env = [(OsString::from("LISTEN_FDS"), OsString::from("9"))];
        let mut child = spawn(
            Path::new("/bin/sh"),
            &sh(script),
            &env,
            &[("out", out_write.as_fd())],
        )
        .unwrap();
        drop(out_write);
        let text = read_all(out_read);
        wait_exit(&mut child);
        assert_eq!(text.trim(), format!("{} 1 unset", child.id()));
    }

    #[test]
    fn a_missing_executable_is_an_error_and_leaves_no_child() {
        let error = spawn(Path::new("/nonexistent/streaming-daemon"), &[], &[], &[]).unwrap_err();
        match &error {
            SpawnError::Exec(_, e) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().contains("/nonexistent/streaming-daemon"));
    }

    #[test]
    fn bad_names_and_values_are_refused_before_forking() {
        let (_read, write) = pipe(0).unwrap();
        let variable = |key: &str, value: &str| vec![(OsString::from(key), OsString::from(value))];
        let refused = |env: &[(OsString, OsString)], fds: &[(&str, BorrowedFd<'_>)]| {
            let error = spawn(Path::new("/bin/true"), &[], env, fds).unwrap_err();
            assert!(matches!(error, SpawnError::Invalid(_)), "{error}");
        };
        refused(&variable("A=B", "1"), &[]);
        refused(&variable("A", "1\x002"), &[]);
        refused(&[], &[("a:b", write.as_fd())]);
        refused(&[], &[("", write.as_fd())]);
        let error = spawn(Path::new("/bin/true"), &["a\x00b".into()], &[], &[]).unwrap_err();
        assert!(matches!(error, SpawnError::Invalid(_)), "{error}");
    }

    #[test]
    fn a_child_can_be_polled_and_killed() {
        let mut child = spawn(Path::new("/bin/sh"), &sh("exec sleep 30"), &[], &[]).unwrap();
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        let status = wait_exit(&mut child);
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: killing again must not signal whoever has the pid now.
        child.kill().unwrap();
        assert_eq!(child.try_wait().unwrap(), Some(status));
    }

    /// The `SigBlk` and `SigIgn` masks of a process, from /proc.
    fn signal_masks(pid: u32) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let mask = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
        };
        (mask("SigBlk:"), mask("SigIgn:"))
    }

    #[test]
    fn the_child_starts_with_no_blocked_or_ignored_signals() {
        // What the daemon has: signals blocked for its signalfd (here in this thread, which is
        // the one that forks) and SIGPIPE ignored (the Rust runtime does that for every
        // program, this test binary included).
        // SAFETY: (test) sigset calls on a local set; the mask changes only this thread's.
        let previous = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGHUP);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous),
                0
            );
            previous
        };
        let ours = signal_masks(std::process::id());
        let result = spawn(Path::new("/bin/sleep"), &["30".into()], &[], &[]);
        // SAFETY: (test) restores this thread's mask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
        let mut child = result.unwrap();
        // `spawn` returns after the exec, and the masks were set before it: no race.
        let (child_blocked, child_ignored) = signal_masks(child.id());
        child.kill().unwrap();
        wait_exit(&mut child);
        let bit = |signal: libc::c_int| 1u64 << (signal - 1);
        assert_ne!(
            ours.1 & bit(libc::SIGPIPE),
            0,
            "the test process ignores SIGPIPE"
        );
        assert_eq!(child_blocked, 0);
        assert_eq!(child_ignored & bit(libc::SIGPIPE), 0);
    }

    #[test]
    fn pids_are_written_in_decimal() {
        for (value, text) in [
            (0, "0"),
            (7, "7"),
            (4_194_304, "4194304"),
            (u32::MAX, "4294967295"),
        ] {
            let mut out = [0u8; PID_DIGITS];
            let length = format_decimal(value, &mut out);
            assert_eq!(&out[..length], text.as_bytes());
        }
    }

    #[test]
    fn the_executable_is_found_as_the_shell_found_it() {
        let cwd = Path::new("/srv/app");
        let in_bin = |p: &Path| p == Path::new("/usr/bin/streaming-daemon");
        let resolve = |argv0: &str, path: Option<&str>| {
            resolve_executable(OsStr::new(argv0), cwd, path.map(OsStr::new), in_bin)
        };
        assert_eq!(
            resolve("/opt/sd/streaming-daemon", None),
            Some(PathBuf::from("/opt/sd/streaming-daemon"))
        );
        assert_eq!(
            resolve("./target/release/streaming-daemon", None),
            Some(PathBuf::from("/srv/app/target/release/streaming-daemon"))
        );
        assert_eq!(
            resolve("../bin/streaming-daemon", None),
            Some(PathBuf::from("/srv/app/../bin/streaming-daemon"))
        );
        assert_eq!(
            resolve("streaming-daemon", Some("/usr/local/bin:/usr/bin")),
            Some(PathBuf::from("/usr/bin/streaming-daemon"))
        );
        assert_eq!(resolve("streaming-daemon", Some("/usr/local/bin")), None);
        assert_eq!(resolve("streaming-daemon", None), None);
        assert_eq!(resolve("", Some("/usr/bin")), None);
        // An empty PATH entry is the working directory.
        let here = |p: &Path| p == Path::new("/srv/app/streaming-daemon");
        assert_eq!(
            resolve_executable(
                OsStr::new("streaming-daemon"),
                cwd,
                Some(OsStr::new(":/x")),
                here
            ),
            Some(PathBuf::from("/srv/app/streaming-daemon"))
        );
    }

    #[test]
    fn the_running_test_binary_resolves_to_itself() {
        let path = startup_executable().unwrap();
        assert!(path.is_absolute());
        assert_eq!(
            std::fs::canonicalize(&path).unwrap(),
            std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap()
        );
    }
}
