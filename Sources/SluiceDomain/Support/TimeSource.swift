/// The two clocks Sluice reads, injected everywhere time matters so that tests move time by
/// hand instead of sleeping.
public protocol TimeSource: Sendable {
    /// Wall-clock milliseconds since the Unix epoch: for what is persisted or shown — entry
    /// expiry and age, TTL replies — which must mean the same after a restart.
    func nowMilliseconds() -> Int64

    /// Monotonic milliseconds (from an arbitrary start): for intervals that live in memory —
    /// bucket refills, leases, reservations, slots, breaker timers — which a step of the wall
    /// clock (NTP, a VM resuming) must neither stretch nor cut short.
    func monotonicMilliseconds() -> Int64
}

extension TimeSource {
    /// Both clocks at once.
    @inlinable
    public func timestamp() -> Timestamp {
        Timestamp(wall: nowMilliseconds(), monotonic: monotonicMilliseconds())
    }
}
