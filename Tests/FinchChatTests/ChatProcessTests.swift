import XCTest

/// Runs the built `finch` binary: pipe mode directly, and the pseudo-terminal test through
/// tools/chat_pty_test.py (pexpect), both with the hidden `--engine echo` test hook.
final class ChatProcessTests: XCTestCase {
    private var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The `finch` executable next to the test bundle ($FINCH_BIN overrides).
    private func finchBinary() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["FINCH_BIN"] { return URL(fileURLWithPath: env) }
        let places = [Bundle.main.executableURL, Bundle(for: Self.self).bundleURL,
                      URL(fileURLWithPath: CommandLine.arguments[0])].compactMap { $0 }
        for place in places {
            var dir = place.deletingLastPathComponent()
            for _ in 0..<3 {
                let candidate = dir.appendingPathComponent("finch")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                dir = dir.deletingLastPathComponent()
            }
        }
        throw XCTSkip("finch executable not found next to the test bundle (build it, or set FINCH_BIN)")
    }

    private func run(_ executable: URL, _ arguments: [String], stdin: String, env: [String: String] = [:])
        throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input; p.standardOutput = output; p.standardError = errors
        try p.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func testPipeModeWritesOneUndecoratedReplyPerLine() throws {
        let finch = try finchBinary()
        let r = try run(finch, ["chat", "--engine", "echo", "--verbose"], stdin: "first message\n\n/show\nlast\n",
                        env: ["FINCH_HISTORY": ""])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "echo: first message\n\necho: /show\necho: last\n")
        XCTAssertTrue(r.err.contains("tokens/s"), "--verbose speed goes to stderr: \(r.err)")
    }

    func testModelLoadingErrorIsClear() throws {
        let finch = try finchBinary()
        let r = try run(finch, ["chat", "--model", "/nonexistent/model"], stdin: "")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("/nonexistent/model"), r.err)
    }

    func testGenerateCommandWithTheTestEngine() throws {
        let finch = try finchBinary()
        let dir = try temporaryFolder("generate-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = dir.appendingPathComponent("prompts.jsonl"), out = dir.appendingPathComponent("out.jsonl")
        try "{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}\n{\"prompt\":\"c\"}\n".write(to: prompts, atomically: true, encoding: .utf8)
        let r = try run(finch, ["generate", "--engine", "echo", "--prompts", prompts.path, "--out", out.path, "--batch", "2"], stdin: "")
        XCTAssertEqual(r.status, 0, r.err)
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[2].contains(#""response":"echo: c""#))
        XCTAssertTrue(r.err.contains("wrote 3 replies"), r.err)
    }

    func testChatThroughAPseudoTerminal() throws {
        let finch = try finchBinary()
        let script = repoRoot.appendingPathComponent("tools/chat_pty_test.py")
        // python3 from PATH (the one pexpect was installed for), through env.
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, finch.path], stdin: "")
        if r.status == 127 { throw XCTSkip("python3 not found: pty test skipped") }
        if r.status == 77 { throw XCTSkip("pty test skipped: \(r.out)") }
        print(r.out.split(separator: "\n").last ?? "")
        XCTAssertEqual(r.status, 0, "pty test failed:\n\(r.out)\n\(r.err)")
    }
}
