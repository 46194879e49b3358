import Foundation
import XCTest
import FinchTrain

/// Ctrl-C in a trainer, as a user presses it: the step finishes, a checkpoint is written, the final stage is skipped,
/// the resume command is printed and the process exits 130; running that command finishes the run.
final class InterruptTests: XCTestCase {
    /// Starts `finch ARGS`, sends SIGINT once `marker` appears in its output (or after `after` seconds), waits.
    func interrupt(_ args: [String], after: Double) throws -> (status: Int32, output: String) {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        p.currentDirectoryURL = PipelineTests.repoRoot
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        Thread.sleep(forTimeInterval: after)
        kill(p.processIdentifier, SIGINT)
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func check(_ args: [String], out: URL, name: String) throws {
        let run = try interrupt(args, after: 4)
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
        try check(["sft", "--model", model.path, "--data", data.path, "--method", "lora", "--max-steps", "1500", "--batch-size", "8",
                   "--seq-len", "96", "--eval-every=-1", "--out", sftOut.path], out: sftOut, name: "sft")
        let prefs = try RLHFFixture.preferences(64, in: dir)
        let rmOut = dir.appendingPathComponent("rm")
        try check(["reward", "--model", model.path, "--data", prefs.path, "--steps", "1500", "--batch-size", "8",
                   "--max-length", "96", "--out", rmOut.path], out: rmOut, name: "reward")
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
