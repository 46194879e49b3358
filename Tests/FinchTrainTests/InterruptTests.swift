import Foundation
import XCTest
import FinchTrain

/// Ctrl-C in a trainer, as a user presses it: the step finishes, a checkpoint is written, the final stage is skipped,
/// the resume command is printed and the process exits 130; running that command finishes the run.
final class InterruptTests: XCTestCase {
    /// Starts `finch ARGS` and sends SIGINT as soon as its output shows `marker` (a progress line).
    func interrupt(_ args: [String], at marker: String) throws -> (status: Int32, output: String) {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        p.currentDirectoryURL = PipelineTests.repoRoot
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        final class Seen: @unchecked Sendable { let lock = NSLock(); var text = Data(); var sent = false }
        let seen = Seen()
        pipe.fileHandleForReading.readabilityHandler = { h in
            let chunk = h.availableData
            seen.lock.lock(); defer { seen.lock.unlock() }
            seen.text.append(chunk)
            if !seen.sent, String(decoding: seen.text, as: UTF8.self).contains(marker) { seen.sent = true; kill(p.processIdentifier, SIGINT) }
        }
        try p.run()
        p.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
        let rest = pipe.fileHandleForReading.readDataToEndOfFile()
        seen.lock.lock(); defer { seen.lock.unlock() }
        seen.text.append(rest)
        return (p.terminationStatus, String(decoding: seen.text, as: UTF8.self))
    }

    func check(_ args: [String], out: URL, name: String, marker: String) throws {
        let run = try interrupt(args, at: marker)
        XCTAssertEqual(run.status, 130, "\(name): \(run.output.suffix(1500))")
        XCTAssertTrue(run.output.contains("interrupted at step") && run.output.contains("resume with: finch"), "\(name): \(run.output.suffix(800))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("final").path), "\(name): an interrupted run wrote final/")
        let checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("checkpoints").path)) ?? []
        XCTAssertFalse(checkpoints.isEmpty, "\(name): no checkpoint after the interrupt")
        // The printed command resumes and finishes.
        guard let line = run.output.split(separator: "\n").last(where: { $0.hasPrefix("resume with: finch ") }) else { return }
        XCTAssertTrue(line.hasSuffix("--resume"))
        let resumed = try ToolProcess.run(PipelineTests.finchBinary()!.path, args + ["--resume"], in: PipelineTests.repoRoot)
        XCTAssertEqual(resumed.status, 0, "\(name) resume: \(resumed.output.suffix(1500))")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("final").path), "\(name): resumed run wrote no final/")
    }

    func testCtrlCInSFTAndRewardExits130AndResumes() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let data = try TrainerFixture.recordsFile(64, in: dir)
        let sftOut = dir.appendingPathComponent("sft")
        try check(["sft", "--model", model.path, "--data", data.path, "--method", "lora", "--max-steps", "200", "--batch-size", "8",
                   "--seq-len", "96", "--eval-every=-1", "--log-every", "1", "--out", sftOut.path], out: sftOut, name: "sft", marker: "step 3/")
        let prefs = try RLHFFixture.preferences(64, in: dir)
        let rmOut = dir.appendingPathComponent("rm")
        try check(["reward", "--model", model.path, "--data", prefs.path, "--steps", "100", "--batch-size", "8",
                   "--max-length", "96", "--out", rmOut.path], out: rmOut, name: "reward", marker: "step 10/")
    }

    /// pretrain, dpo, ppo and classify stop on Ctrl-C the same way (the CLI's sink turns it into a stop request): the
    /// step finishes, a checkpoint is written, exit 130, and the printed resume command finishes the run.
    func testCtrlCInEveryOtherTrainerExits130AndResumes() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let pre = dir.appendingPathComponent("pretrain")
        let text = dir.appendingPathComponent("corpus.txt")
        try (0..<200).map { i in "The \(TrainerFixture.things[i % 8]) is \(TrainerFixture.colours[(i * 3) % 8]) today, number \(i)." }
            .joined(separator: "\n").write(to: text, atomically: true, encoding: .utf8)
        try check(["pretrain", "--data", text.path, "--preset", "tiny", "--tokenizer", TrainerFixture.tokenizerURL.path, "--max-steps", "400", "--batch-size", "4",
                   "--seq-len", "64", "--log-every", "1", "--eval-every=-1", "--out", pre.path], out: pre, name: "pretrain", marker: "step 2/")
        let prefs = try RLHFFixture.preferences(64, in: dir)
        let dpo = dir.appendingPathComponent("dpo")
        try check(["dpo", "--model", model.path, "--data", prefs.path, "--steps", "40", "--batch-size", "4", "--max-length", "96",
                   "--out", dpo.path], out: dpo, name: "dpo", marker: "step 10/")
        let prompts = try PPOTrainingTests.prompts(in: dir)
        let ppo = dir.appendingPathComponent("ppo")
        let script = dir.appendingPathComponent("reward.py")   // one line, so the printed resume command is one line too
        try "import sys, json\nfor line in sys.stdin:\n    r = json.loads(line)['response']\n    print(r.count('red') - 0.01 * len(r), flush=True)\n"
            .write(to: script, atomically: true, encoding: .utf8)
        try check(["ppo", "--policy", model.path, "--prompts", prompts.path, "--reward-command", "python3 -u \(script.path)",
                   "--iterations", "6", "--batch-size", "4", "--max-new-tokens", "6", "--max-length", "48", "--overlong", "truncate",
                   "--eval-prompts", "2", "--out", ppo.path], out: ppo, name: "ppo", marker: "step 1/")
        let data = try ClassifyTests.data(in: dir, name: "classify.jsonl", n: 64)
        let clf = dir.appendingPathComponent("classify")
        try check(["classify", "--model", try EvalTests.modelFolder().path, "--data", data.path, "--labels", TrainerFixture.colours.prefix(4).joined(separator: ","),
                   "--max-steps", "40", "--batch-size", "8", "--out", clf.path], out: clf, name: "classify", marker: "step 10/")
    }

    /// A second run into the same --out is refused unless it resumes (--resume) or replaces (--overwrite) the first.
    func testANonEmptyRunFolderIsRefusedUnlessResumedOrOverwritten() throws {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let data = try TrainerFixture.recordsFile(16, in: dir)
        let out = dir.appendingPathComponent("run")
        let args = ["sft", "--model", model.path, "--data", data.path, "--method", "lora", "--max-steps", "2", "--batch-size", "4",
                    "--seq-len", "96", "--eval-every=-1", "--out", out.path]
        XCTAssertEqual(try ToolProcess.run(bin.path, args, in: PipelineTests.repoRoot).status, 0)
        let again = try ToolProcess.run(bin.path, args, in: PipelineTests.repoRoot)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("already holds a run") && again.output.contains("--overwrite"), again.output)
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let replaced = try ToolProcess.run(bin.path, args + ["--overwrite"], in: PipelineTests.repoRoot)
        XCTAssertEqual(replaced.status, 0, replaced.output.suffix(1000).description)
        let after = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(after.split(separator: "\n").count, metrics.split(separator: "\n").count, "the overwritten run's metrics are its own only")

        // A run that failed before its first step left only its configuration: the next run replaces it unasked.
        let failedOut = dir.appendingPathComponent("failed")
        var bad = args; bad[bad.count - 1] = failedOut.path; bad[2] = dir.appendingPathComponent("no-such-model").path
        XCTAssertNotEqual(try ToolProcess.run(bin.path, bad, in: PipelineTests.repoRoot).status, 0)
        var good = args; good[good.count - 1] = failedOut.path
        let retried = try ToolProcess.run(bin.path, good, in: PipelineTests.repoRoot)
        XCTAssertEqual(retried.status, 0, retried.output.suffix(1000).description)
        XCTAssertTrue(retried.output.contains("never trained"), retried.output)
    }
}
