//! Thread priority of the hashing pool. On Linux the nice value belongs to each thread, so a
//! hashing thread can step back for request threads without touching the rest of the process.

/// Raises the calling thread's nice value by `by` (capped at 19); 0 does nothing. Raising a
/// nice value needs no privilege; a failure only leaves the priority as it was.
#[cfg(target_os = "linux")]
pub(crate) fn lower_current_thread(by: i32) {
    if by <= 0 {
        return;
    }
    let target = (current_thread_nice() + by).min(19);
    // SAFETY: setpriority only reads its integer arguments; with PRIO_PROCESS and who = 0 Linux
    // applies it to the calling thread alone (the nice value is per thread under NPTL).
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target) };
    if rc != 0 {
        tracing::warn!(
            nice = target,
            "could not lower the hashing thread's priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_current_thread(_by: i32) {}

/// The calling thread's nice value (0 where it cannot be read).
#[cfg(target_os = "linux")]
pub(crate) fn current_thread_nice() -> i32 {
    // getpriority may legitimately return -1, so errors are told apart through errno.
    // SAFETY: as above; errno is thread-local.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if nice == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            nice
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn current_thread_nice() -> i32 {
    0
}
