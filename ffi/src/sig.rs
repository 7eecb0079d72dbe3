//! Process signal dispositions the safe layer needs.

const SIGPIPE: i32 = 13;
/// `SIG_DFL`: the default action.
const SIG_DFL: usize = 0;

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

/// Gives SIGPIPE its default action back (the Rust runtime ignores it at start): a
/// command-line tool whose reader went away (`cgnat show sessions | grep -q ...`,
/// `| head`) then ends quietly, as Unix tools do, instead of failing on the write.
/// Only for the commands that print and exit; the appliance itself (`cgnat run`)
/// keeps SIGPIPE ignored, its sockets' writes returning errors instead.
pub fn default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler code; it changes only what
    // the kernel does on SIGPIPE for this process.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}
