//! glibc malloc settings for image work. By default a freed buffer of more than a few MB
//! (a decoded frame, a progressive JPEG's coefficients) goes back to the kernel, and the
//! next image's buffers are mapped and zero-filled again, page by page: a tenth of a
//! thumbnail's time here. Kept for reuse instead, the process stays at its peak, which the
//! memory budgets bound anyway; two arenas keep one thread's freed memory usable by another.

/// Applies the settings; call once, at the start of the process.
pub fn tune_for_images() {
    // SAFETY: mallopt only changes the allocator's parameters; it is called before the
    // runtime's threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
