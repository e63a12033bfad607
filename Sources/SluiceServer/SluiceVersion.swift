public enum SluiceVersion {
    public static let current = "0.1.0"
    /// The Redis version Sluice reports to clients that branch on it (HELLO, INFO).
    public static let redisCompatible = "7.2.0"
}
