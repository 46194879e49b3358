import Foundation

/// A user reward program run once for the whole training run (`finch ppo --reward-command CMD`): Finch writes
/// one JSON object per line on its stdin (`{prompt, response, ...extra fields of the prompt record}`) and
/// reads one number per line from its stdout, in order. The command line runs under `/bin/sh -c`.
///
/// A program that exits, does not answer within `timeout` seconds, or prints something that is not a finite
/// number raises a `TrainingError` naming the command, the line and the program's last stderr output.
public final class RewardCommand {
    public let command: String
    public let timeout: Double
    private let process = Process()
    private let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    private let lock = NSCondition()
    private var outBuffer = Data()
    private var errTail = Data()
    private var eof = false
    private var linesSent = 0

    /// Starts the program (`workingDirectory` defaults to the current one).
    public init(command: String, timeout: Double = 60, workingDirectory: URL? = nil) throws {
        self.command = command
        self.timeout = timeout
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        if let w = workingDirectory { process.currentDirectoryURL = w }
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        stdout.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock()
            if d.isEmpty { self.eof = true; h.readabilityHandler = nil } else { self.outBuffer.append(d) }
            self.lock.broadcast()
            self.lock.unlock()
        }
        stderr.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock()
            if d.isEmpty { h.readabilityHandler = nil } else {
                self.errTail.append(d)
                if self.errTail.count > 4000 { self.errTail = self.errTail.suffix(2000) }
            }
            self.lock.unlock()
        }
        signal(SIGPIPE, SIG_IGN)   // a dead program must give an error, not kill Finch
        do { try process.run() } catch {
            throw TrainingError("reward command '\(command)': cannot start (\(error.localizedDescription))")
        }
    }

    deinit { close() }

    /// Stops the program (closes its stdin, then terminates it if it is still running).
    public func close() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning {
            process.terminate()
        }
    }

    private func failure(_ what: String) -> TrainingError {
        for _ in 0..<20 where process.isRunning { usleep(25_000) }   // let a dying program be reaped
        lock.lock()
        let err = String(decoding: errTail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        lock.unlock()
        let status = process.isRunning ? "" : " (the program exited with status \(process.terminationStatus))"
        return TrainingError("reward command '\(command)': \(what)\(status)" + (err.isEmpty ? "" : "\n  its stderr: " + err.split(separator: "\n").suffix(5).joined(separator: "\n  ")))
    }

    /// Scores `rows` (each a JSON object), one number per row.
    public func score(_ rows: [[String: Any]]) throws -> [Float] {
        var payload = Data()
        for r in rows {
            guard let d = try? JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]) else {
                throw TrainingError("reward command: a row could not be encoded as JSON")
            }
            payload.append(d); payload.append(0x0A)
        }
        guard process.isRunning else { throw failure("the program is not running") }
        do { try stdin.fileHandleForWriting.write(contentsOf: payload) } catch {
            throw failure("writing to its stdin failed (\(error.localizedDescription))")
        }
        var out: [Float] = []
        let deadline = Date().addingTimeInterval(timeout)
        while out.count < rows.count {
            lock.lock()
            var line: String? = nil
            while true {
                if let nl = outBuffer.firstIndex(of: 0x0A) {
                    line = String(decoding: outBuffer[outBuffer.startIndex..<nl], as: UTF8.self)
                    outBuffer.removeSubrange(outBuffer.startIndex...nl)
                    break
                }
                if eof { break }
                if !lock.wait(until: deadline) { break }
            }
            let ended = eof
            lock.unlock()
            guard let text = line else {
                if ended { process.waitUntilExit() }
                if ended { throw failure("the program exited after answering \(linesSent + out.count) of its input lines") }
                close()
                throw failure("no answer within \(timeout) s for input line \(linesSent + out.count + 1) (timeout; raise --reward-timeout)")
            }
            let t = text.trimmingCharacters(in: .whitespaces)
            guard let v = Float(t), v.isFinite else {
                close()
                throw failure("output line \(linesSent + out.count + 1) is \"\(t.prefix(80))\", not a number")
            }
            out.append(v)
        }
        linesSent += rows.count
        return out
    }
}
