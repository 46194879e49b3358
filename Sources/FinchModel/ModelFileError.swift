/// Errors reading or writing model files; every message names the file or tensor concerned.
public struct ModelFileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
