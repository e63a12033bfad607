import Foundation
import Testing

/// A directory of its own for each test of a suite with this trait, removed when the test ends
/// (whatever the outcome), so test runs leave no SQLite files behind in the temporary directory.
struct ScratchDirectory: SuiteTrait, TestTrait, TestScoping {
    @TaskLocal static var current: URL?

    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // The suite itself passes through; each of its test cases gets a directory.
        guard testCase != nil else { return try await function() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.$current.withValue(directory) { try await function() }
    }

    /// A fresh `sluice.db` path inside the running test's directory.
    static func databasePath() -> String {
        guard let current else { fatalError("the suite needs the .scratchDirectory trait") }
        let directory = current.appendingPathComponent(UUID().uuidString)
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("sluice.db").path
    }
}

extension Trait where Self == ScratchDirectory {
    /// See ``ScratchDirectory``.
    static var scratchDirectory: Self { Self() }
}
