/// What a transition of a key's slot queue returns besides its own answer: the slots it granted
/// to waiters and the waits it ended (both to be answered), and when the queue next needs a
/// tick (nil: nobody waits).
public struct SlotTransition<Value: Sendable>: Sendable {
    public var value: Value
    public var grants: [SlotQueue.Grant]
    public var nextWakeUp: Int64?
    /// Waiters whose wait ended in this transition: answer them "not granted".
    public var timedOut: [UInt64] = []
}
