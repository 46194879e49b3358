/// Errors of the trainers and the training infrastructure; messages name the file, line or tensor concerned.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
