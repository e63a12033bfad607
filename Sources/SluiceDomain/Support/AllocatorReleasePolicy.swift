/// When housekeeping gives the allocator's free memory back to the system: once `margin` bytes
/// more are free than right after the last time.
///
/// A release (`malloc_trim`) gives back the pages of free chunks but leaves the chunks free, so
/// the allocator's free total does not fall: going by the total alone, one burst would have
/// every later look trim again — locking every arena to re-advise pages already given back.
/// The mark follows the total down as free chunks are used again.
public struct AllocatorReleasePolicy: Sendable {
    public let margin: Int
    /// Free bytes right after the last release, or the least seen since.
    public private(set) var mark = 0

    public init(margin: Int = 64 << 20) {
        self.margin = margin
    }

    /// Whether to release now, with `free` bytes free in the allocator's arenas.
    public mutating func shouldRelease(free: Int) -> Bool {
        if free < mark { mark = free }
        let (threshold, overflow) = mark.addingReportingOverflow(margin)
        return !overflow && free >= threshold
    }

    /// After a release, with `free` bytes still free (their pages given back).
    public mutating func released(free: Int) {
        mark = free
    }
}
