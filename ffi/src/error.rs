//! Errors of the safe layer. Owns [`Error`], and the helpers that turn DPDK's return
//! codes and `rte_errno` into it.

use crate::sys;
use std::ffi::{CStr, CString};
use std::os::raw::c_int;

/// Something DPDK refused, or a use of this API that it rejects before calling DPDK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A DPDK call failed; `errno` is its error code (`rte_errno` or the negated return
    /// value) and `text` what `rte_strerror` says about it. DPDK's log (stderr) often
    /// says more.
    #[error("{call} failed: {text} (rte_errno {errno})")]
    Dpdk {
        /// The DPDK function that failed.
        call: &'static str,
        /// Its error code, a positive errno or one of DPDK's own (>= 1000).
        errno: i32,
        /// `rte_strerror(errno)`.
        text: String,
    },
    /// A call that needs the EAL came before [`crate::Eal::init`] succeeded, or after the
    /// [`crate::Eal`] was dropped.
    #[error("the DPDK EAL is not running: call Eal::init first and keep the Eal alive")]
    EalNotRunning,
    /// [`crate::Eal::init`] was called a second time in this process (DPDK cannot be
    /// initialised twice, even after a failed attempt or a cleanup).
    #[error("the DPDK EAL can be initialised once per process, and Eal::init was called before")]
    EalAlreadyInitialised,
    /// A string for DPDK holds a NUL byte.
    #[error("{what} holds a NUL byte: {value:?}")]
    Nul {
        /// What the string was for (an EAL argument, a ring name...).
        what: &'static str,
        /// The string.
        value: String,
    },
    /// A named DPDK object (a port) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An argument this layer rejects before calling DPDK; the text says what would
    /// be valid.
    #[error("{0}")]
    Invalid(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The calling thread's `rte_errno` (a per-lcore, i.e. thread-local, variable).
pub(crate) fn errno() -> i32 {
    // SAFETY: reads a thread-local int; no argument, no shared state.
    unsafe { sys::cgnat_shim_errno() }
}

/// `rte_strerror(code)`, copied.
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a NUL-terminated string, either
    // static or in a thread-local buffer that stays valid until this thread calls it
    // again; it is copied before anything else runs on this thread.
    unsafe { CStr::from_ptr(sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

/// An [`Error::Dpdk`] for `call` from an error code of either sign (DPDK returns
/// negative errnos and sets positive ones in `rte_errno`).
pub(crate) fn dpdk(call: &'static str, code: i32) -> Error {
    let errno = code.saturating_abs();
    Error::Dpdk {
        call,
        errno,
        text: strerror(errno),
    }
}

/// An [`Error::Dpdk`] for `call` from the calling thread's `rte_errno`.
pub(crate) fn last(call: &'static str) -> Error {
    dpdk(call, errno())
}

/// `Ok` for a non-negative DPDK return code, the error otherwise.
pub(crate) fn check(call: &'static str, rc: c_int) -> Result<()> {
    if rc < 0 {
        Err(dpdk(call, rc))
    } else {
        Ok(())
    }
}

/// `s` as a C string for DPDK.
pub(crate) fn cstring(what: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Nul {
        what,
        value: s.to_string(),
    })
}

/// The error for a failed creation of a named object (pool, ring), with the two
/// common mistakes spelled out: DPDK names are global to the process and short.
pub(crate) fn create_failed(call: &'static str, kind: &str, name: &str) -> Error {
    let code = errno();
    match code {
        libc_errno::EEXIST => Error::Invalid(format!(
            "a DPDK {kind} named `{name}` exists already; names are unique in a process"
        )),
        libc_errno::ENAMETOOLONG => Error::Invalid(format!(
            "the DPDK {kind} name `{name}` is too long (DPDK allows about 25 bytes)"
        )),
        _ => dpdk(call, code),
    }
}

/// The two errno values [`create_failed`] names (Linux values, as DPDK uses them).
mod libc_errno {
    pub const EEXIST: i32 = 17;
    pub const ENAMETOOLONG: i32 = 36;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpdk_error_carries_code_and_text() {
        let e = dpdk("rte_eth_dev_start", -22);
        let Error::Dpdk { call, errno, text } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((*call, *errno), ("rte_eth_dev_start", 22));
        assert_eq!(text, "Invalid argument");
        assert_eq!(
            e.to_string(),
            "rte_eth_dev_start failed: Invalid argument (rte_errno 22)"
        );
    }

    #[test]
    fn dpdk_own_error_codes_have_text() {
        // E_RTE_SECONDARY: DPDK's own range starts at 1001.
        let e = dpdk("x", 1001);
        assert!(e.to_string().contains("secondary"), "{e}");
    }

    #[test]
    fn check_passes_non_negative_codes() {
        assert!(check("x", 0).is_ok());
        assert!(check("x", 3).is_ok());
        assert!(check("x", -1).is_err());
    }

    #[test]
    fn nul_bytes_are_refused() {
        let e = cstring("an EAL argument", "a\0b").unwrap_err();
        assert_eq!(e.to_string(), "an EAL argument holds a NUL byte: \"a\\0b\"");
    }
}
