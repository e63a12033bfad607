/// Text compared and hashed as its UTF-8 bytes: a semantic namespace's or scope's name, and an
/// entry's prompt where the layer finds it again (to replace, delete or judge it).
///
/// Swift's `String` equality is canonical equivalence: "café" with a composed é and with "e"
/// and a combining accent are equal, as are "Å" (U+212B) and "Å" (U+00C5). The exact layers, the
/// SQLite rows and the Redis keys keep such spellings apart; keyed as `String`s, the semantic
/// layer merged them — two tenants' namespaces or scopes shared answers, and LLM.GET wrote the
/// other one's answer into its own exact key (found by an attack); a SEM.DEL in one spelling
/// removed the entry from memory but not the row stored in the other, which came back after a
/// restart. Lookups by meaning still treat such prompts as the same question.
public struct ExactText: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public static func == (a: ExactText, b: ExactText) -> Bool { same(a.text, b.text) }

    /// The length first: two of these in one key (scope, prompt) must not hash alike when the
    /// bytes only move from one to the other.
    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { bytes in
            hasher.combine(bytes.count)
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
    }

    /// Whether two texts are the same bytes.
    @inlinable
    public static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8)
    }

    public var description: String { text }
}
