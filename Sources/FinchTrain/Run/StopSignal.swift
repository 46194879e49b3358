import Foundation
import Synchronization

/// Ctrl-C handling for training loops: the first SIGINT or SIGTERM only sets a flag (the loop finishes
/// its step, writes a checkpoint and exits); a second one exits the process at once (status 130).
///
/// ```swift
/// StopSignal.install()
/// defer { StopSignal.uninstall() }
/// while step < total {
///     trainOneStep()
///     if StopSignal.requested { saveCheckpoint(); break }
/// }
/// ```
public enum StopSignal {
    /// Signals received since `install` / `reset`. Atomic: written from the signal handler.
    static let count = Atomic<Int>(0)

    /// Installs the handler for SIGINT and SIGTERM.
    public static func install() {
        _ = count.load(ordering: .relaxed)   // initialise the global before any signal can arrive
        var action = sigaction()
        #if os(Linux)
        action.__sigaction_handler.sa_handler = stopSignalHandler
        #else
        action.__sigaction_u.__sa_handler = stopSignalHandler
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// Restores the default handlers and clears the flag.
    public static func uninstall() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        reset()
    }

    /// Whether a stop was asked for.
    public static var requested: Bool { count.load(ordering: .acquiring) > 0 }

    /// Clears the flag (e.g. after the checkpoint, in tests).
    public static func reset() { count.store(0, ordering: .releasing) }

    /// Asks for a stop as a first signal would (for callers such as a KL-explosion guard or tests).
    public static func request() { count.add(1, ordering: .acquiringAndReleasing) }
}

/// The C signal handler: only async-signal-safe calls (an atomic add, write(2) of static text, _exit).
private func stopSignalHandler(_ sig: Int32) {
    let n = StopSignal.count.add(1, ordering: .acquiringAndReleasing).newValue
    if n >= 2 {
        writeStatic("\nStopped.\n")
        _exit(130)
    }
    writeStatic("\nStopping after this step and writing a checkpoint (press Ctrl-C again to quit now)\n")
}

/// Writes a compile-time string to stderr without allocating.
private func writeStatic(_ s: StaticString) {
    _ = write(STDERR_FILENO, s.utf8Start, s.utf8CodeUnitCount)
}

/// Thrown by a training job stopped with Ctrl-C (or SIGTERM) after it finished its step and wrote a checkpoint:
/// the final stage (evaluation after, `final/`) is skipped, so an interrupted run never looks finished. The CLI
/// prints `description` with the resume command and exits 130.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public let step: Int
    public let runFolder: URL
    public init(step: Int, runFolder: URL) { self.step = step; self.runFolder = runFolder }
    public var description: String {
        "interrupted at step \(step); checkpoint written in \(runFolder.appendingPathComponent("checkpoints").path)"
    }
}
