import Foundation

/// A user reward program run once for the whole training run (`finch ppo --reward-command CMD`): Finch writes
/// one JSON object per line on its stdin (`{prompt, response, ...extra fields of the prompt record}`) and
/// reads one number per line from its stdout, in order. The command line runs under `/bin/sh -c`.
///
/// A program that exits, does not answer within `timeout` seconds, or prints something that is not a finite
/// number raises a `TrainingError` naming the command, the line and the program's last stderr output.
public final class RewardProgram {
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

    /// Stops the program (closes its stdin, then terminates it and the processes it started if it is still running:
    /// `/bin/sh -c 'sleep 1000'` must not leave the sleep behind).
    public func close() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning {
            for child in Self.descendants(of: process.processIdentifier) { kill(child, SIGTERM) }
            process.terminate()
        }
    }

    /// Every process below `pid` (Linux /proc; empty elsewhere).
    static func descendants(of pid: Int32) -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }   // best effort
        var parent: [Int32: Int32] = [:]
        for n in names {
            guard let p = Int32(n), let stat = try? String(contentsOfFile: "/proc/\(n)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: end)...].split(separator: " ")   // state ppid …
            if fields.count > 1, let pp = Int32(fields[1]) { parent[p] = pp }
        }
        var out: [Int32] = [], frontier = [pid]
        while let cur = frontier.popLast() {
            for (p, pp) in parent where pp == cur { out.append(p); frontier.append(p) }
        }
        return out
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
        try checkNoExtraLines()
        guard process.isRunning else {
            throw failure("the program stopped after answering \(linesSent) input line(s); it must keep reading its stdin and answer every line")
        }
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
        try checkNoExtraLines()
        return out
    }

    /// Output lines beyond one per input line would be taken as the answers to later rows: an error instead.
    private func checkNoExtraLines() throws {
        lock.lock()
        let extra = outBuffer.split(separator: 0x0A).count
        lock.unlock()
        guard extra > 0 else { return }
        close()
        throw failure("it printed \(extra) more output line(s) than the \(linesSent) input lines it was given (wrong count: one number per input line is expected)")
    }
}
