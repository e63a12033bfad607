import SluiceDomain

/// The embedder (name and dimension) each namespace is bound to in the shared stream's order:
/// the first set after the namespace's last drop binds it, on every instance that replays the
/// stream. An instance whose own write created a namespace before its tail met that set (two
/// instances creating one namespace at once, with different embedders) held another binding,
/// refused the stream's entries for it and kept its own: the tail compares, and rebuilds such a
/// namespace from the stream (`SemanticNamespace.unbind`).
///
/// A plain value, touched by the stream tail's thread only (under an uncontended lock).
struct StreamBindings {
    struct Binding: Equatable {
        let embedder: String
        let dimension: Int
    }

    /// Past this many namespaces, new ones are not followed (their bindings stay as they were
    /// made here, as before there was this record).
    static let defaultMaxNamespaces = 20_000

    let maxNamespaces: Int
    /// By the namespace's bytes (``ExactText``), as the index names it.
    private(set) var bindings: [ExactText: Binding] = [:]

    init(maxNamespaces: Int = defaultMaxNamespaces) {
        self.maxNamespaces = max(1, maxNamespaces)
    }

    /// The tail meets `change`: returns the binding the stream gives the namespace of a set,
    /// after it (nil for other changes, or a namespace past the bound).
    mutating func met(_ change: SemanticChange) -> Binding? {
        switch change {
        case .drop(let ns):
            bindings[ExactText(ns)] = nil
            return nil
        case .set(let ns, _, _, _, let embedder, let vector, _, _, _):
            let key = ExactText(ns)
            if let bound = bindings[key] { return bound }
            // An empty vector is refused before it binds anything (`SemanticNamespace.set`).
            guard !vector.isEmpty, bindings.count < maxNamespaces else { return nil }
            let bound = Binding(embedder: embedder, dimension: vector.count)
            bindings[key] = bound
            return bound
        case .delete, .verdicts:
            return nil
        }
    }

    /// Whether `namespace` is bound otherwise than the stream binds it.
    static func differs(_ namespace: SemanticNamespace, from bound: Binding?) -> Bool {
        guard let bound, let mine = namespace.embedder else { return false }
        return mine != bound.embedder || namespace.dimension != bound.dimension
    }
}
