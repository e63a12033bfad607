import SluiceDomain

/// Draws key ranks: uniform over the keyspace, or Zipf (a few hot keys, a long tail).
struct KeyPicker: Sendable {
    let keyspace: Int
    let zipf: ZipfTrace?

    init(plan: LoadPlan) {
        keyspace = plan.keyspace
        zipf = plan.distribution == .zipf && plan.keyspace > 1 ? ZipfTrace(keys: plan.keyspace, alpha: plan.zipfAlpha) : nil
    }

    @inline(__always)
    func pick(_ random: inout SplitMix64) -> Int {
        if keyspace == 1 { return 0 }
        if let zipf { return zipf.sample(Double(random.next() >> 11) / Double(1 << 53)) }
        return Int(random.next() % UInt64(keyspace))
    }
}
