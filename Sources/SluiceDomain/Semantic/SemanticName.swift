/// A semantic namespace's or scope's name, compared and hashed as its UTF-8 bytes.
///
/// Swift's `String` equality is canonical equivalence: "café" with a composed é and with "e"
/// and a combining accent are equal, as are "Å" (U+212B) and "Å" (U+00C5). The exact layers key
/// LLM.* by bytes, and a namespace or scope is an identity (a tenant, a user), not text to read:
/// keyed as `String`s, two names the exact layer kept apart shared semantic answers, and
/// LLM.GET then wrote the other tenant's answer into its own exact key (found by an attack).
public struct SemanticName: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public static func == (a: SemanticName, b: SemanticName) -> Bool { same(a.text, b.text) }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Whether two names are the same bytes.
    @inlinable
    public static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8)
    }

    public var description: String { text }
}
