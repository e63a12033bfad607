/// Why a rate-limit request cannot be answered with a decision.
public enum LimitError: Error, Sendable, Hashable {
    /// More than the bucket can ever hold.
    case exceedsBurst(asked: Int64, burst: Int64)
    case tooManyKeys(limit: Int)
    case unknownReservation
    /// Open reservations at their bound (per shard); they settle or expire.
    case tooManyReservations(limit: Int)
    /// Held concurrency slots at their bound (per shard); they are released or expire.
    case tooManySlots(limit: Int)
}
