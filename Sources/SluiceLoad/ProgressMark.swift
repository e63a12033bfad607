import SluiceDomain

/// What the progress ticker read at its last tick, to show the rate since.
final class ProgressMark: Sendable {
    let value = Locked(0)

    /// Stores `new`; returns what was there.
    func swap(_ new: Int) -> Int { value.withLock { old in defer { old = new }; return old } }
}
