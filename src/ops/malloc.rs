//! glibc malloc settings for a process that hands multi-megabyte frames from camera threads to the
//! analysis thread.
//!
//! With glibc's defaults, freeing a large block that was mmapped raises the mmap threshold to that block's
//! size (up to 32 MiB), so every later 1080p frame (6 MiB of BGR, 3 MiB decoded) comes from the heap of the
//! thread that allocated it. Camera threads allocate and the analysis thread frees, so each camera's arena
//! keeps a few frames' worth of freed memory that it never returns, and each thread that allocates gets an
//! arena of its own (up to 8 per core). Measured on the daemon (`polewatch bench pipeline` and heaptrack):
//! the heap the program holds was a fraction of its RSS; see the README's pipeline section.
//!
//! A fixed threshold (which also turns the dynamic one off) maps every block of at least
//! [`MMAP_THRESHOLD`] on its own and unmaps it on free, and [`ARENA_MAX`] arenas bound the small-block heaps.

/// Blocks of this size and more are mmapped and returned to the system on free: 1080p BGR frames (6 MiB,
/// allocated by a camera thread and freed by the analysis thread) are; decoded pictures, crops, JPEGs,
/// reads and messages are not. At 512 KiB every decoded picture was mmapped too, and the page faults cost
/// more CPU than the memory they saved (2 cameras, glibc's own settings through the environment:
/// 330 MiB and 116 ms of CPU per analysed frame with the defaults, 285 MiB / 163 ms at 512 KiB,
/// 291 MiB / 127 ms at 4 MiB).
pub const MMAP_THRESHOLD: i32 = 4 * 1024 * 1024;
/// Malloc arenas for the whole process (glibc's default is 8 per core).
pub const ARENA_MAX: i32 = 2;

/// Applies the settings; call it before the first thread starts. False when glibc refused them; true
/// (nothing to do) where the C library is not glibc.
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 && libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    true
}
