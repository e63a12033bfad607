/// What a transition of a key's slot queue returns besides its own answer: the slots it granted
/// to waiters (to be delivered to them), and when the queue next needs a tick (nil: nobody waits).
public struct SlotTransition<Value: Sendable>: Sendable {
    public var value: Value
    public var grants: [SlotQueue.Grant]
    public var nextWakeUp: Int64?
}
