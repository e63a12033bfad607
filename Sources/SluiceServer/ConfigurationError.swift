/// A configuration Sluice refuses to start with, and why.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
