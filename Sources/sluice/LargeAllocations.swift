import CSluiceKernels

/// How the process's allocator treats large blocks (values, replies, file reads of a megabyte
/// and more).
///
/// glibc's malloc maps a block of 128 KiB or more on its own, but once such a block is freed it
/// raises that threshold to the block's size (up to 32 MiB): later blocks that size come from
/// the heap arenas, and what is freed in the middle of an arena stays with the process. After a
/// burst of 3 MB answers read for a thousand clients that had gone, the server kept 10 GB it no
/// longer used (peak 18 GB); with the threshold fixed at 1 MiB the same burst peaked at 3.5 GB
/// and the process went back to 120 MB. Blocks under 1 MiB are served as before; a larger one
/// costs an mmap and its page faults, small beside copying a megabyte.
enum LargeAllocations {
    static let threshold = 1 << 20

    /// Called once at start-up, before any large block exists.
    static func returnToTheSystemWhenFreed() {
        _ = sluice_map_large_allocations(threshold)
    }
}
