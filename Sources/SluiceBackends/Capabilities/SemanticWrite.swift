import NIOCore
import SluiceDomain

/// An entry to store in the semantic cache (`SEM.SET`): the prompt, its response and the
/// prompt's vector, made by `embedder`.
public struct SemanticWrite: Sendable {
    public var namespace: String
    public var scope: String
    public var prompt: String
    public var response: ByteBuffer
    public var embedder: String
    public var vector: [Float]
    public var createdAt: Int64
    /// 0 = never.
    public var expiresAt: Int64
    /// TOKENS, COST and TAG: what a hit on it saves.
    public var worth: AnswerWorth

    public init(namespace: String, scope: String, prompt: String, response: ByteBuffer, embedder: String, vector: [Float],
                createdAt: Int64, expiresAt: Int64, worth: AnswerWorth = .none) {
        self.worth = worth
        self.namespace = namespace
        self.scope = scope
        self.prompt = prompt
        self.response = response
        self.embedder = embedder
        self.vector = vector
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
