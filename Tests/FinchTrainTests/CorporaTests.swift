import Foundation
import XCTest

/// The shipped corpora and their checker: `corpora/` is exactly what `tools/gen_corpora.py` writes (so the files
/// and the generator never drift apart), the instruction replies follow the generator's rules, and
/// `tools/reward_check.py` passes its own scoring cases.
final class CorporaTests: XCTestCase {
    static let repoRoot = PipelineTests.repoRoot

    func testShippedCorporaAreWhatTheGeneratorWrites() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("finch-corpora-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: out) }
        let run = try ToolProcess.run("/usr/bin/env", ["python3", "tools/gen_corpora.py", "--out", out.path], in: Self.repoRoot)
        XCTAssertEqual(run.status, 0, run.output)
        let shipped = Self.repoRoot.appendingPathComponent("corpora")
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertEqual(names, try FileManager.default.contentsOfDirectory(atPath: shipped.path).sorted())
        for name in names {
            let a = try Data(contentsOf: out.appendingPathComponent(name)), b = try Data(contentsOf: shipped.appendingPathComponent(name))
            XCTAssert(a == b, "corpora/\(name) differs from what tools/gen_corpora.py writes (run it again and commit)")
        }
    }

    /// Instruction replies are the bare answer, or (only when the instruction asks for no form) a sentence that
    /// holds it; both kinds occur.
    func testInstructionRepliesAreBareOrASentenceHoldingTheAnswer() throws {
        let text = try String(contentsOf: Self.repoRoot.appendingPathComponent("corpora/instructions.jsonl"), encoding: .utf8)
        var bare = 0, sentences = 0
        for (n, line) in text.split(separator: "\n").enumerated() {
            let row = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "line \(n + 1)")
            let (instruction, output, answer) = (row["instruction"] ?? "", row["output"] ?? "", row["answer"] ?? "")
            if output == answer { bare += 1; continue }
            sentences += 1
            XCTAssert(output.contains(answer), "line \(n + 1): \(output) does not hold \(answer)")
            let asksForForm = instruction.range(of: #"\bonly\b|answer with|one word"#,
                                                options: [.regularExpression, .caseInsensitive]) != nil
            XCTAssertFalse(asksForForm, "line \(n + 1): \(instruction) asks for a form but got a sentence")
        }
        XCTAssertGreaterThan(bare, 0)
        XCTAssertGreaterThan(sentences, 0)
    }

    func testRewardCheckSelfTest() throws {
        let run = try ToolProcess.run("/usr/bin/env", ["python3", "tools/reward_check.py", "--self-test"], in: Self.repoRoot)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssert(run.output.contains("cases pass"), run.output)
    }
}

/// Runs a program to the end and returns its exit status and combined output.
enum ToolProcess {
    static func run(_ executable: String, _ arguments: [String], in directory: URL,
                    environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.currentDirectoryURL = directory
        if let environment { p.environment = environment }
        let log = Pipe()
        p.standardOutput = log; p.standardError = log
        try p.run()
        let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }
}
