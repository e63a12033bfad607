import NIOCore
import SluiceDomain

/// `--requirepass`, compared in time that does not depend on the password: both sides are
/// reduced to 128-bit keyed digests (two seeds, random per process) whose comparison looks at
/// every bit, and only equal digests are compared byte for byte. How long a wrong guess takes
/// depends on the guess alone.
public struct PasswordCheck: Sendable {
    let password: [UInt8]
    let first: KeyHasher
    let second: KeyHasher
    let digest: (UInt64, UInt64)

    public init(_ password: String) {
        let bytes = Array(password.utf8)
        let first = KeyHasher(), second = KeyHasher()
        self.password = bytes
        self.first = first
        self.second = second
        digest = bytes.withUnsafeBytes { (first.hash($0), second.hash($0)) }
    }

    public func matches(_ candidate: ByteBuffer) -> Bool {
        let (a, b) = candidate.withUnsafeReadableBytes { (first.hash($0), second.hash($0)) }
        guard (a ^ digest.0) | (b ^ digest.1) == 0 else { return false }
        return candidate.readableBytesView.elementsEqual(password)
    }
}
