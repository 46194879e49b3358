import Foundation
import XCTest

/// `finch critique` and `finch synthesize` with a real instruct model (SmolLM2-135M-Instruct, Q4_1 GGUF), through the
/// binary as a user runs them: the data they write trains with `finch sft`, `dpo`, `reward` and `kto` as it is, and a
/// run killed mid-way continues without repeating or losing a prompt.
final class SelfCritiqueRealModelTests: XCTestCase {
    var dir: URL!
    var model = ""

    override func setUpWithError() throws {
        model = try RealModelTests.modelPath("smollm2")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-cai-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    @discardableResult
    func finch(_ args: [String]) throws -> String {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let start = Date()
        let run = try ToolProcess.run(bin.path, args, in: PipelineTests.repoRoot)
        print(String(format: "finch %@: %.1f s", args[0], Date().timeIntervalSince(start)))
        XCTAssertEqual(run.status, 0, "finch \(args.joined(separator: " ")) failed:\n\(run.output.suffix(3000))")
        return run.output
    }

    func lines(_ url: URL) throws -> [[String: Any]] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Runs finch, sends `sig` as soon as `log` holds a record, and returns the exit status (or the signal that ended it).
    func signal(_ sig: Int32, to bin: URL, _ args: [String], whenRecordsIn log: URL) throws -> Int32 {
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        p.currentDirectoryURL = PipelineTests.repoRoot
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning, Date() < deadline, try lines(log).isEmpty { usleep(50_000) }
        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        return p.terminationStatus
    }

    func testSmolLM2CritiqueSurvivesAKillAndItsDataTrainsWithSFTDPORewardAndKTO() throws {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let out = dir.appendingPathComponent("cai")
        let prompts = dir.appendingPathComponent("prompts.jsonl")
        let shipped = try String(contentsOf: PipelineTests.repoRoot.appendingPathComponent("prompts/critique_prompts.jsonl"), encoding: .utf8)
        try (shipped.split(separator: "\n").prefix(4).joined(separator: "\n") + "\n").write(to: prompts, atomically: true, encoding: .utf8)
        let args = ["critique", "--model", model, "--principles", "prompts/constitution.jsonl", "--prompts", prompts.path,
                    "--out", out.path, "--max-new-tokens", "32", "--temperature", "0.7", "--seed", "1", "--batch-size", "2"]

        // Killed (SIGKILL, no chance to tidy up) as soon as the first batch is on disk.
        let transcripts = out.appendingPathComponent("transcripts.jsonl")
        XCTAssertEqual(try signal(SIGKILL, to: bin, args, whenRecordsIn: transcripts), SIGKILL)
        let before = try lines(transcripts).count
        XCTAssertGreaterThan(before, 0, "the first batch was never written")
        XCTAssertLessThan(before, 4, "the run finished before it could be killed")

        let resumed = try finch(args)
        XCTAssertTrue(resumed.contains("\(before) of 4 prompts already done"), resumed)
        let t = try lines(transcripts)
        XCTAssertEqual(t.compactMap { $0["index"] as? Int }, [0, 1, 2, 3], "every prompt once, in order")
        for r in t {
            print("--- [\(r["principle"]!)] \(((r["prompt"] as? [[String: String]])?.last?["content"]) ?? "")")
            for k in ["response", "critique", "revision"] { print("\(k): \(r[k]!)") }
        }
        let sft = try lines(out.appendingPathComponent("sft.jsonl")), prefs = try lines(out.appendingPathComponent("preferences.jsonl"))
        let kept = t.filter { $0["kept"] as? Bool == true }
        XCTAssertEqual(sft.count, kept.count); XCTAssertEqual(prefs.count, kept.count)
        XCTAssertGreaterThanOrEqual(kept.count, 2, "most revisions are usable")
        for (pair, r) in zip(prefs, kept) {
            XCTAssertEqual(pair["chosen"] as? String, r["revision"] as? String)
            XCTAssertEqual(pair["rejected"] as? String, r["response"] as? String)
        }
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("critique.json"))) as? [String: Any]
        XCTAssertEqual((meta?["sampling"] as? [String: Any])?["max_new_tokens"] as? Int, 32)

        // Other settings on the same folder are refused, naming the change.
        let refused = try ToolProcess.run(bin.path, args.map { $0 == "0.7" ? "0.9" : $0 }, in: PipelineTests.repoRoot)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("sampling.temperature: 0.7 → 0.9"), refused.output)

        // The files train as they are, one step each.
        let train = ["--model", model, "--method", "lora", "--lora-r", "4", "--batch-size", "2", "--threads", "2"]
        try finch(["sft", "--data", out.appendingPathComponent("sft.jsonl").path, "--max-steps", "1", "--seq-len", "128",
               "--out", dir.appendingPathComponent("sft").path] + train)
        for method in ["dpo", "reward", "kto"] {
            try finch([method, "--data", out.appendingPathComponent("preferences.jsonl").path, "--steps", "1", "--max-length", "160",
                   "--out", dir.appendingPathComponent(method).path] + train)
        }
    }

    /// Ctrl-C (SIGINT) ends the run after the batch in flight, with status 130 and whole records on disk.
    func testSmolLM2CritiqueStopsAfterTheBatchOnCtrlC() throws {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let out = dir.appendingPathComponent("cai")
        let transcripts = out.appendingPathComponent("transcripts.jsonl")
        let status = try signal(SIGINT, to: bin, ["critique", "--model", model, "--principles", "prompts/constitution.jsonl",
                                                   "--prompts", "prompts/critique_prompts.jsonl", "--out", out.path,
                                                   "--max-new-tokens", "16", "--seed", "2", "--batch-size", "1"], whenRecordsIn: transcripts)
        XCTAssertEqual(status, 130)
        let done = try lines(transcripts)
        XCTAssertGreaterThan(done.count, 0)
        XCTAssertLessThan(done.count, 8, "stopped before the end")
        XCTAssertEqual(try lines(out.appendingPathComponent("sft.jsonl")).count, done.filter { $0["kept"] as? Bool == true }.count)
    }

    func testSmolLM2SynthesizeGrowsThreeTasksFromSeeds() throws {
        let seeds = dir.appendingPathComponent("seeds.jsonl")
        let shipped = try String(contentsOf: PipelineTests.repoRoot.appendingPathComponent("corpora/open_ended.jsonl"), encoding: .utf8)
        try (shipped.split(separator: "\n").prefix(8).joined(separator: "\n") + "\n").write(to: seeds, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("tasks.jsonl")
        let log = try finch(["synthesize", "--model", model, "--seed-tasks", seeds.path, "--n", "3", "--out", out.path,
                             "--max-attempts", "24", "--max-new-tokens", "48", "--temperature", "0.9", "--seed", "1", "--batch-size", "4"])
        print(log.split(separator: "\n").last(where: { $0.hasPrefix("synthesize:") }) ?? "")
        let tasks = try lines(out)
        XCTAssertEqual(tasks.count, 3)
        for t in tasks {
            print("task: \(t["instruction"]!)\nanswer: \(t["output"]!)")
            XCTAssertFalse((t["instruction"] as? String ?? "").isEmpty)
            XCTAssertFalse((t["output"] as? String ?? "").isEmpty)
        }
        let attempts = try lines(URL(fileURLWithPath: out.path + ".attempts.jsonl"))
        for a in attempts where a["status"] as? String != "accepted" { print("rejected (\(a["reason"] ?? "")): \(a["instruction"] ?? "")") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path + ".meta.json"))
        // The synthesized set trains with finch sft.
        try finch(["sft", "--model", model, "--data", out.path, "--method", "lora", "--lora-r", "4", "--batch-size", "2", "--max-steps", "1",
               "--seq-len", "128", "--threads", "2", "--out", dir.appendingPathComponent("sft").path])
    }
}
