//! DPDK for cgnat: bindgen over the system DPDK (22.11 or later), a C shim for its
//! static inline functions, and a small safe layer: EAL, mempool, owned mbufs, bursts,
//! ports, rings and lcore launch. This is the only crate in the project with `unsafe`;
//! every block says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    missing_docs
)]
#[allow(clippy::all)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

mod mbuf;
mod port;
mod ring;

pub use mbuf::{Mbuf, MbufBurst, Mempool, MAX_BURST};
pub use port::{Link, Port, PortConf, PortInfo, PortStats};
pub use ring::{MsgRing, Ring};

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

/// A DPDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call returned an error code (or set rte_errno).
    #[error("{call} failed: {text} (errno {code})")]
    Dpdk {
        /// The DPDK function.
        call: &'static str,
        /// Its error code (positive errno).
        code: i32,
        /// `rte_strerror` of the code.
        text: String,
    },
    /// EAL was initialised before in this process.
    #[error("the EAL can be initialised once per process")]
    EalTwice,
    /// An argument holds a NUL byte.
    #[error("argument holds a NUL byte: {0:?}")]
    Nul(String),
    /// A named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn errno() -> i32 {
    // SAFETY: reads the calling thread's per-lcore rte_errno; no memory is touched.
    unsafe { sys::cgnat_shim_errno() }
}

pub(crate) fn error(call: &'static str, code: i32) -> Error {
    let code = code.abs();
    // SAFETY: rte_strerror returns a pointer to a static or thread-local string that
    // stays valid until the next call on this thread; it is copied at once.
    let text = unsafe { CStr::from_ptr(sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned();
    Error::Dpdk { call, code, text }
}

pub(crate) fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Nul(s.to_string()))
}

static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer. Dropping it calls `rte_eal_cleanup`.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises EAL with `args` (without the program name, which is added). DPDK's
    /// log goes to stderr, so stdout stays the program's own. Once per process.
    pub fn init(args: &[String]) -> Result<Eal> {
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalTwice);
        }
        let mut owned: Vec<CString> = vec![cstring("cgnat")?];
        for a in args {
            owned.push(cstring(a)?);
        }
        // rte_eal_init may permute argv; it gets pointers into `owned`, which outlives
        // the call, plus the terminating NULL C expects.
        let mut argv: Vec<*mut std::os::raw::c_char> =
            owned.iter().map(|c| c.as_ptr() as *mut _).collect();
        argv.push(std::ptr::null_mut());
        // SAFETY: rte_openlog_stream only stores the FILE pointer (stderr, valid for
        // the process). rte_eal_init gets a valid argc/argv; EAL_STARTED guarantees a
        // single call per process.
        let rc = unsafe {
            sys::cgnat_shim_log_to_stderr();
            sys::rte_eal_init((argv.len() - 1) as i32, argv.as_mut_ptr())
        };
        if rc < 0 {
            return Err(error("rte_eal_init", errno()));
        }
        Ok(Eal { _private: () })
    }

    /// The main lcore.
    pub fn main_lcore() -> u32 {
        // SAFETY: plain query of EAL configuration.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Number of enabled lcores.
    pub fn lcore_count() -> u32 {
        // SAFETY: plain query of EAL configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// The NUMA socket of the calling lcore.
    pub fn socket_id() -> i32 {
        // SAFETY: plain query of per-thread EAL state.
        unsafe { sys::rte_socket_id() as i32 }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, after every DPDK object this program made was dropped
        // (they borrow nothing from Eal, but the program drops Eal last).
        unsafe {
            sys::rte_eal_cleanup();
        }
    }
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

unsafe extern "C" fn trampoline(arg: *mut std::os::raw::c_void) -> i32 {
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for this one call.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    job()
}

/// Runs `f` on worker lcore `lcore` (rte_eal_remote_launch). The lcore must be idle.
pub fn launch(lcore: u32, f: impl FnOnce() -> i32 + Send + 'static) -> Result<()> {
    let job: Box<Job> = Box::new(Box::new(f));
    let raw = Box::into_raw(job) as *mut std::os::raw::c_void;
    // SAFETY: `trampoline` takes back ownership of `raw` exactly once when it runs;
    // if the launch fails, nothing ran and ownership is reclaimed here.
    let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), raw, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so the lcore never saw `raw`.
        drop(unsafe { Box::from_raw(raw as *mut Job) });
        return Err(error("rte_eal_remote_launch", rc));
    }
    Ok(())
}

/// Waits for lcore `lcore` to finish its job; returns the job's value.
pub fn wait(lcore: u32) -> i32 {
    // SAFETY: blocks until the worker lcore is idle; no memory is shared.
    unsafe { sys::rte_eal_wait_lcore(lcore) }
}

/// The calling thread's lcore id.
pub fn current_lcore() -> u32 {
    // SAFETY: reads a per-thread variable.
    unsafe { sys::cgnat_shim_lcore_id() }
}

/// The time stamp counter.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no memory effects.
    unsafe { sys::cgnat_shim_rdtsc() }
}

/// TSC ticks per second.
pub fn tsc_hz() -> u64 {
    // SAFETY: plain query of a value EAL measured at start-up.
    unsafe { sys::rte_get_tsc_hz() }
}

/// A spin-wait hint.
#[inline]
pub fn pause() {
    // SAFETY: the pause instruction has no memory effects.
    unsafe { sys::cgnat_shim_pause() }
}
