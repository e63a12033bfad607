/// A semantic lookup (`SEM.GET`): the best entry of `namespace` in `scope` for the prompt whose
/// vector (by `embedder`) this is, at or above `minScore` (nil: the namespace's or the default).
public struct SemanticQuery: Sendable {
    public var namespace: String
    public var prompt: String
    public var scope: String
    public var minScore: Float?
    public var embedder: String
    public var vector: [Float]

    public init(namespace: String, prompt: String, scope: String, minScore: Float?, embedder: String, vector: [Float]) {
        self.namespace = namespace
        self.prompt = prompt
        self.scope = scope
        self.minScore = minScore
        self.embedder = embedder
        self.vector = vector
    }
}
