import Synchronization

/// A boolean that a value type (a `Service` struct) can share with the callbacks it starts.
final class SharedFlag: Sendable {
    let value = Atomic<Bool>(false)
}
