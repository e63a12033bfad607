/// What `RL.ACQUIRE` decided: `[granted, slot_id, queue_position, estimated_wait_ms]`.
public struct SlotDecision: Sendable, Hashable {
    public var granted: Bool
    /// The slot to release; nil when not granted.
    public var slot: UInt64?
    /// Not granted: the place this request had (or would have had) in the key's queue, 1 = next.
    /// Granted: 0.
    public var queuePosition: Int
    /// Not granted: an estimate of the wait for a slot, in ms. Granted: 0.
    public var estimatedWait: Int64
    /// Granted after waiting in the queue: how long, in ms.
    public var waited: Int64 = 0

    public init(granted: Bool, slot: UInt64?, queuePosition: Int, estimatedWait: Int64, waited: Int64 = 0) {
        self.granted = granted
        self.slot = slot
        self.queuePosition = queuePosition
        self.estimatedWait = estimatedWait
        self.waited = waited
    }

    public static func granted(_ slot: UInt64, waited: Int64 = 0) -> SlotDecision {
        SlotDecision(granted: true, slot: slot, queuePosition: 0, estimatedWait: 0, waited: waited)
    }
}
