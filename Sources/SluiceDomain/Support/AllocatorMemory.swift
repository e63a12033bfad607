import CSluiceKernels

/// Memory the allocator holds for the process but no longer uses.
///
/// glibc's malloc gives freed memory back to the system only from the top of a heap; what is
/// freed in the middle of one, between blocks still in use, stays with the process. A burst that passes
/// megabytes between threads — pipelines of 70 KB prompts in shared mode, replies written on an
/// event loop for answers read on Redis's thread — left 1–2 GB resident with 30 MB in use
/// (found by an attack on LLM.GET; `malloc_stats`: two arenas of 560 MB and 800 MB, under 2 MB
/// of each in use). ``releaseFree()`` hands those pages back; housekeeping calls it when
/// ``freeBytes`` is large.
public enum AllocatorMemory {
    /// Bytes free inside the allocator's arenas (0 where the allocator cannot say).
    public static var freeBytes: Int { Int(clamping: sluice_allocator_free_bytes()) }

    /// Gives the pages of free chunks back to the system (the chunks stay free: ``freeBytes``
    /// does not fall). True when glibc advised any pages back — including ones given back
    /// before. It locks each arena while it walks it: call it off the event loops, and not
    /// often (``AllocatorReleasePolicy``).
    @discardableResult
    public static func releaseFree() -> Bool { sluice_allocator_release_free() == 1 }
}
