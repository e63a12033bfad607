/// Lease tokens: random, so that a token cannot be guessed from another one.
public enum LeaseToken {
    public static func random() -> UInt64 { UInt64.random(in: 1 ... .max) }
}
