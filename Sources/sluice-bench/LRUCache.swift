/// Plain LRU over a byte budget: the baseline the L1's eviction is measured against.
/// Keys and sizes only (no values): a hit-ratio simulator, not a cache to serve from.
struct LRUCache {
    struct Node {
        var key: UInt64
        var charge: Int
        var prev: Int32
        var next: Int32
    }

    let capacity: Int
    var bytes = 0
    var index: [UInt64: Int32] = [:]
    var nodes: [Node] = []
    var free: [Int32] = []
    var head: Int32 = -1  // most recent
    var tail: Int32 = -1  // least recent

    init(capacity: Int) { self.capacity = capacity }

    /// true = hit. On a miss the key is inserted (demand fill), evicting from the tail.
    mutating func access(_ key: UInt64, charge: Int) -> Bool {
        if let i = index[key] {
            unlink(i)
            pushFront(i)
            return true
        }
        guard charge <= capacity else { return false }
        while bytes + charge > capacity && tail >= 0 {
            let victim = tail
            unlink(victim)
            index[nodes[Int(victim)].key] = nil
            bytes -= nodes[Int(victim)].charge
            free.append(victim)
        }
        let node = Node(key: key, charge: charge, prev: -1, next: -1)
        let i: Int32
        if let f = free.popLast() { i = f; nodes[Int(f)] = node } else { i = Int32(nodes.count); nodes.append(node) }
        index[key] = i
        bytes += charge
        pushFront(i)
        return false
    }

    mutating func unlink(_ i: Int32) {
        let n = nodes[Int(i)]
        if n.prev >= 0 { nodes[Int(n.prev)].next = n.next } else { head = n.next }
        if n.next >= 0 { nodes[Int(n.next)].prev = n.prev } else { tail = n.prev }
    }

    mutating func pushFront(_ i: Int32) {
        nodes[Int(i)].prev = -1
        nodes[Int(i)].next = head
        if head >= 0 { nodes[Int(head)].prev = i }
        head = i
        if tail < 0 { tail = i }
    }
}
