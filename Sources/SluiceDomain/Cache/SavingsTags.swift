
/// The names clients attach to stored answers with `TAG` (a model, an agent) so that the tokens
/// and cost each hit saves can be told apart in metrics. Entries carry a 16-bit id instead of
/// the name (8 bytes per L1 entry, not a string); files and Redis keep the name.
///
/// Bounded twice: the first ``maxTags`` names get an id (so they are kept with the entry, in
/// files and Redis, under their own name); any later one is stored as ``other``. Metrics give
/// only the first ``maxLabels`` a label of their own. Process-wide, since an id only has to mean
/// the same within one process. "none" and "other" are reserved: they are what untagged and
/// unlabelled savings are called.
public final class SavingsTags: Sendable {
    public static let shared = SavingsTags()

    /// Distinct tags kept by name, "other" included.
    public static let maxTags = 1024
    /// Tags with a metrics label of their own (ids below this).
    public static let maxLabels = 64
    /// The id of entries stored without a TAG.
    public static let none: UInt16 = 0
    /// The id of every tag past the bound.
    public static let other: UInt16 = 1
    /// Longest tag name; a longer TAG is refused at the edge.
    public static let maxNameLength = 64

    struct Table {
        var ids: [String: UInt16] = ["other": SavingsTags.other]
        var names: [String] = ["", "other"]
    }

    let table = Locked(Table())

    public init() {}

    /// Whether a client may name a tag so: 1 to ``maxNameLength`` printable ASCII characters, no
    /// space, quote or backslash, and not one of the reserved names.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maxNameLength && name != "none" && name != "other"
            && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// The id of `name` ("" is no tag). A name read back from a file or from Redis that a
    /// client could not have given counts as "other".
    public func id(for name: String) -> UInt16 {
        if name.isEmpty || name == "none" { return Self.none }
        guard Self.isValidName(name) else { return Self.other }
        return table.withLock { t in
            if let id = t.ids[name] { return id }
            guard t.names.count < Self.maxTags else { return Self.other }
            let id = UInt16(t.names.count)
            t.ids[name] = id
            t.names.append(name)
            return id
        }
    }

    /// The name of an id ("" for no tag).
    public func name(of id: UInt16) -> String {
        table.withLock { Int(id) < $0.names.count ? $0.names[Int(id)] : "other" }
    }

    /// The metrics label of an id: its name, "none", or "other" past ``maxLabels``.
    public func label(of id: UInt16) -> String {
        if id == Self.none { return "none" }
        return Int(id) < Self.maxLabels ? name(of: id) : "other"
    }
}

/// What the hits on answers of one tag saved.
public struct Savings: Sendable, Hashable {
    public var hits = 0
    public var tokens: Int64 = 0
    public var cost: Double = 0

    public init(hits: Int = 0, tokens: Int64 = 0, cost: Double = 0) {
        self.hits = hits
        self.tokens = tokens
        self.cost = cost
    }

    public mutating func add(tokens: Int64, cost: Double) {
        hits += 1
        self.tokens = self.tokens.addingSaturating(tokens)
        self.cost += cost
    }

    public static func + (a: Savings, b: Savings) -> Savings {
        Savings(hits: a.hits + b.hits, tokens: a.tokens.addingSaturating(b.tokens), cost: a.cost + b.cost)
    }
}
