import Foundation

/// Thrown by a training job stopped at the caller's request (Ctrl-C in the CLI) after it finished its step and wrote a
/// checkpoint: the final stage (evaluation after, `final/`) is skipped, so an interrupted run never looks finished.
/// The CLI prints `description` with the resume command and exits 130.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public let step: Int
    public let runFolder: URL
    public init(step: Int, runFolder: URL) { self.step = step; self.runFolder = runFolder }
    public var description: String {
        "interrupted at step \(step); checkpoint written in \(runFolder.appendingPathComponent("checkpoints").path)"
    }
}
