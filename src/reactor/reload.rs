//! SIGHUP: reloading the configuration (SPEC §6.2).
//!
//! The file is read, the new backend built and its upstream prepared (CA files, a first name
//! lookup) on a helper thread, so that the loop never waits on a disk or on DNS; the result
//! comes back through a channel and the loop's waker. Applied, it holds for connections accepted
//! from then on: each connection keeps the settings, backend request and upstream connection it
//! started with. Keys that need a restart keep their running values and are named in a warning.

use std::ffi::OsString;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use crate::attachments::{DataDirSlot, DirError, DirNote};
use crate::backends::{Backends, DaemonWide};
use crate::config::{self, Config, Invocation, ReloadPlan};
use crate::conn::{report_data_dir, Settings};
use crate::logging;
use crate::metrics::ReloadResult;
use crate::upstream::prepare::{self, PreparedUpstream};

use super::Reactor;

/// How the daemon was started, to load the configuration again the same way.
pub struct ReloadSource {
    /// The command line (without the program name): flags still win over the file.
    pub args: Vec<OsString>,
}

/// A reload's state in the loop.
#[derive(Default)]
pub(super) struct Reloading {
    source: Option<ReloadSource>,
    /// The helper thread's answer, while one runs.
    pending: Option<Receiver<Result<Loaded, String>>>,
    /// Another SIGHUP came while one was running: run again once it is done.
    again: bool,
}

/// What the helper thread prepared: the plan, and one load for each worker.
struct Loaded {
    plan: ReloadPlan,
    leader: WorkerLoad,
    followers: Vec<WorkerLoad>,
}

/// What one worker applies: the configuration, and the backends, upstreams and data
/// directory built for it alone (a worker's are never shared).
pub struct WorkerLoad {
    config: Config,
    backends: Backends,
    upstreams: Vec<PreparedUpstream>,
    /// `server.data_dir` opened anew, when the reload changes it.
    data_dir: Option<OpenedDir>,
}

type OpenedDir = (DataDirSlot, Result<Vec<DirNote>, DirError>);

impl Reloading {
    pub(super) fn new(source: Option<ReloadSource>) -> Reloading {
        Reloading {
            source,
            pending: None,
            again: false,
        }
    }
}

impl Reactor {
    /// SIGHUP.
    pub(super) fn begin_reload(&mut self) {
        log::info!(
            active_connections = self.tally.shared().connections(),
            active_streams = self.tally.shared().active_streams();
            "SIGHUP received"
        );
        self.notifier.reloading();
        if self.reloading.pending.is_some() {
            self.reloading.again = true;
            return;
        }
        let has_file = self.config.config_file.is_some();
        let Some(source) = self.reloading.source.as_ref().filter(|_| has_file) else {
            log::warn!("SIGHUP: no config file specified (-config), nothing to reload");
            self.notifier.ready();
            return;
        };
        let args = source.args.clone();
        let running = self.config.clone();
        let followers = self.follower_count();
        let wide = self.backends_wide.clone();
        let waker = Arc::clone(&self.waker);
        let (answer, pending) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let _ = answer.send(load(args, &running, &wide, followers));
                let _ = waker.wake();
            });
        match spawned {
            Ok(_) => self.reloading.pending = Some(pending),
            Err(e) => self.refuse_reload(&format!("cannot start the reload thread: {e}")),
        }
    }

    /// The waker rang: a reload may be ready to apply.
    pub(super) fn take_reload(&mut self) {
        let Some(pending) = &self.reloading.pending else {
            return;
        };
        let answer = match pending.try_recv() {
            Ok(answer) => answer,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => Err("the reload thread ended unexpectedly".into()),
        };
        self.reloading.pending = None;
        match answer {
            Ok(loaded) => self.apply_reload(loaded),
            Err(message) => self.refuse_reload(&message),
        }
        if std::mem::take(&mut self.reloading.again) {
            self.begin_reload();
        }
    }

    fn apply_reload(&mut self, loaded: Loaded) {
        let Loaded {
            plan,
            leader,
            followers,
        } = loaded;
        let ReloadPlan {
            applied,
            needs_restart,
            config,
        } = plan;
        let data_dir_result = leader.data_dir.as_ref().map(|(_, result)| result);
        if let Some(result) = data_dir_result {
            report_data_dir(config.server.data_dir.as_deref(), result);
        }
        if let Err(message) = self.apply_worker_load(leader) {
            return self.refuse_reload(&message);
        }
        self.send_reloads(followers);
        logging::reconfigure(config.logging.level, config.logging.format);
        logging::set_secrets(config.secrets());
        self.sweeper.configure(
            config.server.data_dir.as_deref(),
            config.server.data_max_age,
        );
        self.backends.announce();
        if !needs_restart.is_empty() {
            log::warn!(
                keys = needs_restart.join(", ").as_str();
                "SIGHUP: these keys need a restart; their running values are kept"
            );
        }
        log::info!(changed = applied.join(", ").as_str(); "configuration reloaded");
        self.tally.reloaded(ReloadResult::Ok);
        self.notifier.ready();
    }

    /// What every worker applies of a reload: settings for the connections it accepts from
    /// now on, its backends, upstreams and data directory. Fails (changing nothing) only when
    /// an upstream cannot be started.
    pub(super) fn apply_worker_load(&mut self, load: WorkerLoad) -> Result<(), String> {
        let WorkerLoad {
            config,
            backends,
            upstreams,
            data_dir,
        } = load;
        let upstreams = self.make_upstreams(upstreams, &config.backend.upstream)?;
        let server = &config.server;
        if server.max_handoff_bytes + 1 != self.buffers.handoff.len() {
            self.buffers.handoff = vec![0; server.max_handoff_bytes + 1].into_boxed_slice();
        }
        self.max_connections = server.max_connections;
        self.mem_limit = server.mem_limit;
        self.shutdown_timeout = server.shutdown_timeout;
        self.settings = Rc::new(Settings::from_config(&config));
        // Pooled connections of the old upstream close with it; calls still running on one
        // finish there and are not pooled by the new upstream (another generation).
        self.backends = backends;
        self.upstreams = upstreams;
        if let Some((slot, _)) = data_dir {
            self.data_dir = slot;
        }
        self.config = config;
        Ok(())
    }

    fn refuse_reload(&mut self, message: &str) {
        log::error!(error = message; "configuration reload refused; nothing changed");
        self.tally.reloaded(ReloadResult::Error);
        self.notifier.ready();
    }
}

/// On the reload thread: the configuration read and validated as at start-up, the plan against
/// the running one, and for the leader and each of its `followers` the backends and upstreams
/// for it prepared (and `data_dir` opened, when it changes).
fn load(
    args: Vec<OsString>,
    running: &Config,
    wide: &DaemonWide,
    followers: usize,
) -> Result<Loaded, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let loaded = match config::load(args, &env) {
        Ok(Invocation::Run(config)) => config,
        Ok(_) => return Err("the command line no longer asks to run".into()),
        Err(error) => return Err(error.to_string()),
    };
    let plan = config::plan_reload(running, loaded);
    let new_dir = plan.config.server.data_dir.as_deref();
    let dir_changed = new_dir != running.server.data_dir.as_deref();
    let worker = || -> Result<WorkerLoad, String> {
        let backends = Backends::create_with(&plan.config, wide).map_err(|e| e.to_string())?;
        let upstreams = prepare::prepare_all(backends.targets())?;
        let data_dir = dir_changed.then(|| DataDirSlot::open(new_dir, Instant::now()));
        Ok(WorkerLoad {
            config: plan.config.clone(),
            backends,
            upstreams,
            data_dir,
        })
    };
    let leader = worker()?;
    let followers = (0..followers).map(|_| worker()).collect::<Result<_, _>>()?;
    Ok(Loaded {
        plan,
        leader,
        followers,
    })
}
