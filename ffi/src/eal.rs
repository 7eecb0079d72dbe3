//! The EAL's lifetime and the lcores. Owns [`Eal`] (init once, cleanup on drop), the
//! process-wide control state every other module consults before calling into DPDK,
//! remote launch of closures on worker lcores, and the lcore/time helpers.
//!
//! # The control state
//!
//! DPDK's control path (EAL init and cleanup, ethdev configuration, object creation)
//! is not thread-safe and is undefined before `rte_eal_init` and after
//! `rte_eal_cleanup`. One mutex, [`control`], serialises it and records whether the
//! EAL is running, how many DPDK objects (pools, rings) are alive, the pools that were
//! dropped while mbufs of theirs were still out, and which pool each port's RX queues
//! draw from. [`Eal`]'s drop cleans the EAL up only when nothing is left that could
//! still touch its memory; otherwise the EAL stays up until the process exits.

use crate::error::{self, Error, Result};
use crate::mbuf::Mempool;
use crate::{port, sys};
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lcore ids EAL accepts are below this (DPDK's `RTE_MAX_LCORE`).
pub const MAX_LCORE: u32 = sys::RTE_MAX_LCORE;

/// The file prefix EAL uses with `args` (`--file-prefix`, or DPDK's default `rte`).
fn file_prefix(args: &[String]) -> String {
    let mut it = args.iter();
    let mut prefix = "rte".to_string();
    while let Some(a) = it.next() {
        if let Some(p) = a.strip_prefix("--file-prefix=") {
            prefix = p.to_string();
        } else if a == "--file-prefix" {
            if let Some(p) = it.next() {
                prefix = p.clone();
            }
        }
    }
    prefix
}

/// After a failed `rte_eal_init`: if another process holds the lock on the shared
/// configuration of the same file prefix (a second primary process, which EAL
/// refuses with `rte_errno` 0), says which process and what to change. Read from
/// `/proc/locks`, which lists each POSIX lock's holder and the locked file's inode.
fn prefix_clash(args: &[String]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if args
        .iter()
        .any(|a| a == "--no-shconf" || a == "--in-memory")
    {
        return None;
    }
    let prefix = file_prefix(args);
    // EAL's runtime directory: /var/run/dpdk for root, else under XDG_RUNTIME_DIR.
    let base = if is_root() {
        "/var/run/dpdk".to_string()
    } else {
        std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()) + "/dpdk"
    };
    let config = std::path::PathBuf::from(format!("{base}/{prefix}/config"));
    let ino = std::fs::metadata(&config).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let holder = locks.lines().find_map(|l| {
        // "1: POSIX  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
        let f: Vec<&str> = l.split_whitespace().collect();
        let (pid, file) = (f.get(4)?, f.get(5)?);
        let lock_ino: u64 = file.rsplit(':').next()?.parse().ok()?;
        (f.get(1) == Some(&"POSIX") && lock_ino == ino && *pid != std::process::id().to_string())
            .then(|| pid.to_string())
    })?;
    Some(format!(
        "another DPDK process (pid {holder}) runs with the file prefix `{prefix}` (it holds \
         {}); give each appliance on this host its own --file-prefix=NAME in \
         dataplane.eal_args",
        config.display()
    ))
}

/// True when the effective user is root (as `/proc/self/status` says).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(true)
}

/// Where the EAL is in its one life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Before `Eal::init`.
    Uninit,
    /// `rte_eal_init` failed; DPDK cannot be initialised again.
    Failed,
    /// Initialised; DPDK may be called.
    Running,
    /// `rte_eal_cleanup` ran; every DPDK pointer is dangling.
    Cleaned,
}

/// A mempool that was dropped while some of its mbufs were still out (in a port,
/// a ring, or an `Mbuf` somewhere); it is freed once they are all back.
pub(crate) struct OrphanPool(pub(crate) NonNull<sys::rte_mempool>);

// SAFETY: the pointer is only an address kept under the control mutex; it is used
// (counted, freed) only while that mutex is held.
unsafe impl Send for OrphanPool {}

/// The process-wide control state; see the module documentation.
pub(crate) struct Control {
    /// The EAL's state.
    pub(crate) state: State,
    /// Live DPDK objects: mempools (with a handle), rings and message rings.
    pub(crate) objects: usize,
    /// Dropped mempools waiting for their mbufs.
    pub(crate) orphans: Vec<OrphanPool>,
    /// The pool each set-up RX queue takes its mbufs from, as (port, queue, pool): a
    /// pool must outlive every queue that refills from it.
    pub(crate) rx_pools: Vec<(u16, u16, Mempool)>,
    /// Ports this process configured (bit per port id), closed by `Eal`'s drop.
    pub(crate) ports_used: u64,
    /// Ports started (bit per port id).
    pub(crate) ports_started: u64,
}

static CONTROL: Mutex<Control> = Mutex::new(Control {
    state: State::Uninit,
    objects: 0,
    orphans: Vec::new(),
    rx_pools: Vec::new(),
    ports_used: 0,
    ports_started: 0,
});

/// Locks the control state. A panic while it was held cannot have left it half
/// updated (every update is a single assignment after the DPDK call), so a poisoned
/// lock is taken as it is.
///
/// Never drop a [`Mempool`] while holding the guard: its drop locks again.
pub(crate) fn control() -> MutexGuard<'static, Control> {
    CONTROL.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Control {
    /// `Ok` while the EAL is running.
    pub(crate) fn running(&self) -> Result<()> {
        if self.state == State::Running {
            Ok(())
        } else {
            Err(Error::EalNotRunning)
        }
    }

    /// Frees the orphaned pools whose mbufs are all back, if that can be known for
    /// sure right now (see [`quiescent`]).
    pub(crate) fn free_orphans(&mut self) {
        if self.orphans.is_empty() || self.state != State::Running || !quiescent() {
            return;
        }
        self.orphans.retain(|p| {
            // SAFETY: an orphan is a pool that was created and not freed yet.
            let in_use = unsafe { sys::rte_mempool_in_use_count(p.0.as_ptr()) };
            if in_use > 0 {
                return true;
            }
            // SAFETY: nothing references the pool any more: no Mempool handle (it was
            // dropped), no RX queue (queues hold a handle), no mbuf (in_use is 0, and
            // `quiescent` made sure no lcore is halfway through returning one into
            // its cache). It is freed once, as it leaves the list.
            unsafe { sys::rte_mempool_free(p.0.as_ptr()) };
            false
        });
    }
}

/// True when the caller is the main lcore and no worker lcore is running a job.
///
/// Then a mempool's in-use count is exact: worker lcores are idle, so none is halfway
/// through putting an mbuf into its per-lcore cache (where the count would see it
/// before the put is finished); threads that are not lcores have no cache, and their
/// puts are complete when the pool's ring shows them; the main lcore is the caller.
/// Launches come only from the main lcore, so no job can start meanwhile.
fn quiescent() -> bool {
    // SAFETY: plain reads of EAL configuration and of this thread's lcore id.
    let (me, main) = unsafe { (sys::cgnat_shim_lcore_id(), sys::rte_get_main_lcore()) };
    if me != main {
        return false;
    }
    worker_lcores().into_iter().all(|l| {
        // SAFETY: `l` is an enabled lcore id below RTE_MAX_LCORE.
        let state = unsafe { sys::rte_eal_get_lcore_state(l) };
        if state == sys::rte_lcore_state_t::RUNNING {
            return false;
        }
        // SAFETY: the lcore is idle and only the main lcore (us) could launch a job on
        // it, so this returns at once; its acquire load orders the worker's last
        // writes (its cache) before our reads of the pool.
        unsafe { sys::rte_eal_wait_lcore(l) };
        true
    })
}

/// The enabled lcores other than the main one (EAL must be running).
fn worker_lcores() -> Vec<u32> {
    // SAFETY: plain reads of EAL configuration; ids stay below RTE_MAX_LCORE.
    let main = unsafe { sys::rte_get_main_lcore() };
    (0..sys::RTE_MAX_LCORE)
        // SAFETY: as above.
        .filter(|&l| l != main && unsafe { sys::rte_lcore_is_enabled(l) } != 0)
        .collect()
}

/// The initialised Environment Abstraction Layer: DPDK itself.
///
/// There is one per process: [`Eal::init`] succeeds once. The thread that calls it
/// becomes the main lcore (EAL pins it to the main lcore's CPU), and the `Eal` stays
/// on that thread (it is neither `Send` nor `Sync`), because [`launch`] and
/// [`wait`] belong to the main lcore and its drop waits for the worker lcores.
///
/// Dropping it tears DPDK down in order: it waits for every worker lcore's job to
/// return, stops and closes the ports this process configured (which flushes, e.g.,
/// net_pcap's output files), frees the pools that are no longer used, and calls
/// `rte_eal_cleanup` if no pool, ring or mbuf is left alive. If one is (e.g. an
/// `Arc<Mempool>` held elsewhere), cleanup is skipped and the EAL stays up until the
/// process exits, so that object remains valid.
pub struct Eal {
    _main_lcore_only: PhantomData<*const ()>,
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal")
            .field("main_lcore", &Eal::main_lcore())
            .field("lcores", &Eal::lcores())
            .finish()
    }
}

impl Eal {
    /// Initialises the EAL with `args`, DPDK's command-line options **without** the
    /// program name (this function puts `cgnat` in front as `argv[0]`), e.g.
    /// `["--no-huge", "-m", "256", "--no-pci", "-l", "0,1", "--vdev=net_ring0"]`.
    ///
    /// DPDK's log goes to stderr, and so does the usage text EAL prints after a bad
    /// argument: stdout stays the program's own (file descriptor 1 points at stderr
    /// while EAL initialises, for every thread of the process). Once per process:
    /// a second call, even after a failed first one, is
    /// [`Error::EalAlreadyInitialised`]; an argument with a NUL byte is refused before
    /// anything happens (and does not use up the one call).
    pub fn init(args: &[String]) -> Result<Eal> {
        let mut ctl = control();
        if ctl.state != State::Uninit {
            return Err(Error::EalAlreadyInitialised);
        }
        let mut owned = vec![error::cstring("the program name", "cgnat")?];
        for a in args {
            owned.push(error::cstring("an EAL argument", a)?);
        }
        // EAL may keep pointers into argv (it reorders it and records some options),
        // so the strings live as long as the process: a few bytes, once.
        let argv: &mut [*mut c_char] = Vec::leak(
            owned
                .into_iter()
                .map(|c| c.into_raw())
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        let argc = c_int::try_from(argv.len() - 1)
            .map_err(|_| Error::Invalid("too many EAL arguments".into()))?;
        ctl.state = State::Failed;
        // SAFETY: rte_eal_init (through the shim, which also sends DPDK's output to
        // stderr) gets argc valid C strings plus the NULL that C's argv ends with, all
        // leaked above; the state check under the control lock makes this the only
        // call in the process.
        let rc = unsafe { sys::cgnat_shim_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let e = error::last("rte_eal_init");
            return Err(prefix_clash(args).map_or(e, Error::Invalid));
        }
        ctl.state = State::Running;
        crate::mbuf::register_stamp();
        Ok(Eal {
            _main_lcore_only: PhantomData,
        })
    }

    /// The main lcore's id (the thread that called [`Eal::init`]).
    pub fn main_lcore() -> u32 {
        // SAFETY: reads EAL's configuration, a static that exists before init too.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The enabled lcores, main lcore included, in increasing order; empty unless the
    /// EAL is running.
    pub fn lcores() -> Vec<u32> {
        if control().running().is_err() {
            return Vec::new();
        }
        (0..sys::RTE_MAX_LCORE)
            // SAFETY: reads EAL's configuration; `l` is below RTE_MAX_LCORE.
            .filter(|&l| unsafe { sys::rte_lcore_is_enabled(l) } != 0)
            .collect()
    }

    /// The enabled lcores other than the main one: those [`launch`] can use.
    pub fn worker_lcores() -> Vec<u32> {
        if control().running().is_err() {
            return Vec::new();
        }
        worker_lcores()
    }

    /// The number of enabled lcores (0 unless the EAL is running).
    pub fn lcore_count() -> u32 {
        if control().running().is_err() {
            return 0;
        }
        // SAFETY: reads EAL's configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// The NUMA socket of the calling thread's lcore, for allocations it will use
    /// (-1, any socket, on a thread that is not an lcore).
    pub fn socket_id() -> i32 {
        // SAFETY: reads a thread-local variable (SOCKET_ID_ANY until EAL sets it).
        let s = unsafe { sys::rte_socket_id() };
        i32::try_from(s).unwrap_or(sys::SOCKET_ID_ANY)
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: this is the main lcore (Eal is !Send and was made on it), which is
        // where DPDK wants this called; it blocks until every worker's job returned.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        let pools = {
            let mut ctl = control();
            port::close_all(&mut ctl);
            std::mem::take(&mut ctl.rx_pools)
        };
        // Outside the lock: a pool's drop takes it.
        drop(pools);
        let mut ctl = control();
        ctl.free_orphans();
        if ctl.state != State::Running || ctl.objects > 0 || !ctl.orphans.is_empty() {
            return;
        }
        port::shut_all_gates();
        ctl.state = State::Cleaned;
        // SAFETY: no DPDK object of ours is left (no pool, ring or orphan; mbufs imply
        // a pool), every port queue's gate is shut so no burst can start, workers are
        // idle, and every later call finds the state Cleaned before touching DPDK.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// What [`wait`] returns for a job that panicked (the panic cannot unwind into C: it
/// is caught at the lcore's boundary and reported by the panic hook as usual).
pub const JOB_PANICKED: i32 = i32::MIN;

/// Runs on the worker lcore: takes the job back and runs it.
unsafe extern "C" fn trampoline<F>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> i32 + Send + 'static,
{
    // SAFETY: `arg` is the Box<F> that `launch` leaked for this one run; the EAL passes
    // it to exactly one call of this function.
    let job = unsafe { Box::from_raw(arg.cast::<F>()) };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(JOB_PANICKED)
}

/// Runs `f` on worker lcore `lcore` (`rte_eal_remote_launch`) and returns at once;
/// [`wait`] collects its return value.
///
/// Must be called on the main lcore (the thread that called [`Eal::init`]), for an
/// enabled lcore other than the main one that is not running a job.
pub fn launch<F>(lcore: u32, f: F) -> Result<()>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let ctl = control();
    ctl.running()?;
    let main = Eal::main_lcore();
    if current_lcore() != main {
        return Err(Error::Invalid(format!(
            "launch must be called on the main lcore ({main}), the thread that ran Eal::init"
        )));
    }
    if !worker_lcores().contains(&lcore) {
        return Err(Error::Invalid(format!(
            "lcore {lcore} cannot run a job: the worker lcores are {:?} (set them with -l)",
            worker_lcores()
        )));
    }
    let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
    // SAFETY: `trampoline::<F>` matches lcore_function_t and takes ownership of `arg`
    // when it runs; `lcore` is an enabled worker; we are the main lcore, the only
    // thread that launches, so the lcore's state cannot change under DPDK's check.
    let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline::<F>), arg, lcore) };
    drop(ctl);
    if rc != 0 {
        // SAFETY: the launch failed, so the lcore never saw `arg`: it is still the
        // Box<F> made above, reclaimed once here.
        drop(unsafe { Box::from_raw(arg.cast::<F>()) });
        return Err(if rc == -16 {
            Error::Invalid(format!("lcore {lcore} is still running a job: wait for it"))
        } else {
            error::dpdk("rte_eal_remote_launch", rc)
        });
    }
    Ok(())
}

/// Waits until worker lcore `lcore` has finished its job and returns the job's value
/// ([`JOB_PANICKED`] if it panicked; 0 if none was launched).
///
/// # Panics
/// Unless called on the main lcore for a worker lcore, as DPDK requires.
pub fn wait(lcore: u32) -> i32 {
    let main = Eal::main_lcore();
    assert!(
        current_lcore() == main,
        "cgnat_ffi::wait must be called on the main lcore ({main})"
    );
    assert!(
        lcore != main
            && lcore < sys::RTE_MAX_LCORE
            // SAFETY: reads EAL's configuration; `lcore` is below RTE_MAX_LCORE.
            && unsafe { sys::rte_lcore_is_enabled(lcore) } != 0,
        "cgnat_ffi::wait: lcore {lcore} is not a worker lcore"
    );
    // SAFETY: called on the main lcore for an enabled worker lcore; it only polls
    // that lcore's state (static memory, valid even after cleanup).
    unsafe { sys::rte_eal_wait_lcore(lcore) }
}

/// The calling thread's lcore id; `u32::MAX` (DPDK's LCORE_ID_ANY) on a thread that
/// is not an lcore, e.g. one made with `std::thread::spawn`.
#[inline]
pub fn current_lcore() -> u32 {
    // SAFETY: reads a thread-local variable.
    unsafe { sys::cgnat_shim_lcore_id() }
}

/// The CPU's time-stamp counter (`rte_rdtsc`).
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc reads a CPU register; no memory is involved.
    unsafe { sys::cgnat_shim_rdtsc() }
}

/// Asks the CPU to bring the cache line holding `r` into its caches, ahead of a use
/// (a hint: it never faults and changes nothing else).
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault, and `r` is a
    // valid reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Time-stamp counter ticks per second, as EAL measured them at init (0 before).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a static that EAL sets once during init.
    unsafe { sys::rte_get_tsc_hz() }
}

/// A spin-wait hint for polling loops (`rte_pause`).
#[inline]
pub fn pause() {
    // SAFETY: the pause instruction has no memory effects.
    unsafe { sys::cgnat_shim_pause() }
}
