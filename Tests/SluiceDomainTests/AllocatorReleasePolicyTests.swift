import SluiceDomain
import Testing

@Suite("Allocator release policy")
struct AllocatorReleasePolicyTests {
    static let mb = 1 << 20

    /// `shouldRelease` out of `#expect` (which cannot take a mutating call).
    static func look(_ policy: inout AllocatorReleasePolicy, _ free: Int) -> Bool {
        policy.shouldRelease(free: free)
    }

    @Test func aBurstIsGivenBackOnceAndNotAgainUntilMoreIsFreed() {
        var policy = AllocatorReleasePolicy(margin: 64 * Self.mb)
        #expect(!Self.look(&policy, 10 * Self.mb))
        #expect(Self.look(&policy, 800 * Self.mb))
        // The release leaves the chunks free: the same total must not trim again, look after look.
        policy.released(free: 800 * Self.mb)
        for _ in 0..<5 { #expect(!Self.look(&policy, 800 * Self.mb)) }
        #expect(!Self.look(&policy, 863 * Self.mb))
        #expect(Self.look(&policy, 864 * Self.mb))
    }

    @Test func theMarkFollowsFreeMemoryDownAsItIsUsedAgain() {
        var policy = AllocatorReleasePolicy(margin: 64 * Self.mb)
        #expect(Self.look(&policy, 500 * Self.mb))
        policy.released(free: 500 * Self.mb)
        // Reused by new blocks: 100 MB left free; a new burst frees 64 MB more than that.
        #expect(!Self.look(&policy, 100 * Self.mb))
        #expect(policy.mark == 100 * Self.mb)
        #expect(!Self.look(&policy, 163 * Self.mb))
        #expect(Self.look(&policy, 164 * Self.mb))
    }

    @Test func aHugeMarkNeverOverflows() {
        var policy = AllocatorReleasePolicy(margin: Int.max)
        policy.released(free: 1)
        #expect(!Self.look(&policy, Int.max))
    }
}
