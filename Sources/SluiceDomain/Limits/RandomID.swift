/// Ids handed to clients for reservations and slots: random, so one cannot be guessed from
/// another, and below 2⁶³ so every client library reads them as a signed 64-bit integer too.
public enum RandomID {
    public static func next() -> UInt64 { UInt64.random(in: 1 ... (UInt64.max >> 1)) }
}
