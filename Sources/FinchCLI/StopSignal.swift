import Foundation
import Synchronization

/// Ctrl-C for training commands (the CLI's side; trainers only see `ProgressSink.stopRequested`): the first SIGINT or SIGTERM only sets a flag (the loop finishes
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

    /// A trial of `finch sweep` (`parent` is the sweep's pid): leaves the terminal's process group, so a Ctrl-C reaches
    /// the sweep alone, which passes one stop request on (two would end the trial without its checkpoint); and asks for a
    /// stop when the sweep is gone (killed), so the trial checkpoints and ends instead of running on unwatched.
    public static func followSweep(parent: pid_t) {
        _ = setpgid(0, 0)
        let t = Thread {
            while getppid() == parent { Thread.sleep(forTimeInterval: 0.5) }
            request()
        }
        t.start()
    }
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
