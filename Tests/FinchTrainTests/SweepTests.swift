import Foundation
import XCTest
import FinchData
import FinchTrain

/// `finch sweep`: the search space file, the samplers, the halving rule, and whole sweeps through the `finch`
/// binary (trials as child processes, resume after Ctrl-C and after SIGKILL, exact match, bad input).
final class SweepTests: XCTestCase {
    typealias F = TrainerFixture

    func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let u = dir.appendingPathComponent(name)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    // MARK: - Space, sampler, halving

    func testSpaceReadsEveryDistributionAndRefusesBadKeys() throws {
        let dir = try F.tempDir()
        let u = try write("""
            lr: {log-uniform: [1.0e-4, 1.0e-2]}
            lora-dropout: {uniform: [0, 0.2]}
            warmup: {int: [0, 50]}
            max-steps: {log-int: [10, 1000]}
            lora-r: {choice: [4, 8, 16]}
            lora-targets: [[q_proj, v_proj], all-linear]
            """, "space.yaml", in: dir)
        let s = try SearchSpace.load(u, knownKeys: SFTConfig.recipeKeys)
        XCTAssertEqual(s.parameters.map(\.key), ["lr", "lora-dropout", "warmup", "max-steps", "lora-r", "lora-targets"])
        XCTAssertEqual(s.parameters[0].distribution, .logUniform(1e-4, 1e-2))
        XCTAssertEqual(s.parameters[2].distribution, .int(0, 50))
        XCTAssertEqual(s.parameters[5].distribution, .choice([.list([.string("q_proj"), .string("v_proj")]), .string("all-linear")]))
        for (text, expected) in [("", "empty"), ("learning-rat: {uniform: [0, 1]}", "'learning-rat' is not a parameter"),
                                 ("out: [a, b]", "sets it for every trial"), ("lr: {uniform: [1, 0]}", "low < high"),
                                 ("lr: {log-uniform: [0, 1]}", "low > 0"), ("lr: {normal: [0, 1]}", "unknown distribution"),
                                 ("lora-r: {choice: []}", "at least one value"), ("warmup: {int: [0.5, 3]}", "whole numbers")] {
            let bad = try write(text, "bad.yaml", in: dir)
            XCTAssertThrowsError(try SearchSpace.load(bad, knownKeys: SFTConfig.recipeKeys), text) {
                XCTAssertTrue("\($0)".contains(expected), "\(text): \($0)")
            }
        }
    }

    func testSamplersStayInTheSpaceAndTPEConcentratesOnGoodValues() throws {
        let space = SearchSpace(parameters: [.init(key: "lr", distribution: .logUniform(1e-5, 1e-1)),
                                             .init(key: "warmup", distribution: .int(0, 10)),
                                             .init(key: "lora-r", distribution: .choice([.int(4), .int(8), .int(16)]))])
        // A known optimum: lr = 1e-3 and r = 8; the score grows with the distance in log space.
        func objective(_ v: [String: RecipeValue]) -> Double {
            guard case .double(let lr) = v["lr"]!, case .int(let r) = v["lora-r"]! else { return .infinity }
            return abs(log10(lr) + 3) + (r == 8 ? 0 : 1)
        }
        func run(_ method: TPESampler.Method) -> [Double] {
            var history: [TPESampler.Observation] = []
            var sampler = TPESampler(method: method)
            sampler.startupTrials = 8
            var scores: [Double] = []
            for i in 0..<40 {
                let v = sampler.propose(space, history: history, seed: 9, index: i)
                if case .double(let lr) = v["lr"]! { XCTAssertTrue(lr >= 1e-5 && lr <= 1e-1) } else { XCTFail("lr not a double") }
                if case .int(let w) = v["warmup"]! { XCTAssertTrue((0...10).contains(w)) } else { XCTFail("warmup not an int") }
                history.append(.init(values: v, score: objective(v)))
                scores.append(objective(v))
            }
            // Deterministic: the same seed, index and history give the same proposal.
            XCTAssertEqual(sampler.propose(space, history: history, seed: 9, index: 40), sampler.propose(space, history: history, seed: 9, index: 40))
            return scores
        }
        let random = run(.random), tpe = run(.tpe)
        let lateRandom = random.suffix(20).reduce(0, +) / 20, lateTPE = tpe.suffix(20).reduce(0, +) / 20
        XCTAssertLessThan(lateTPE, lateRandom * 0.6, "TPE's later proposals should sit nearer the optimum than random ones")
        XCTAssertEqual(Array(random.prefix(8)), Array(tpe.prefix(8)), "the start-up trials are the random ones")
    }

    func testSuccessiveHalvingRungsAndCutoff() {
        let h = SuccessiveHalving(eta: 3, graceSteps: 10)
        XCTAssertEqual(h.milestones(maxSteps: 100), [10, 30, 90])
        XCTAssertEqual(h.milestones(maxSteps: 90), [10, 30])
        XCTAssertTrue(h.continues(5, recorded: [5]), "the first trial at a rung always continues")
        XCTAssertTrue(h.continues(1, recorded: [1, 2]))
        XCTAssertFalse(h.continues(2, recorded: [1, 2]))
        // Best third of six: values 1 and 2 continue (cutoff 1 + (5/3 − 1)·1 ≈ 2.67), 3 stops.
        XCTAssertTrue(h.continues(2, recorded: [1, 2, 3, 4, 5, 6]))
        XCTAssertFalse(h.continues(3, recorded: [1, 2, 3, 4, 5, 6]))
    }

    // MARK: - Whole sweeps through the binary

    struct Setup { let dir, base, space: URL }

    /// A tiny base model, instruction data and a base recipe whose trials take a few seconds each.
    func setup(steps: Int = 60, extra: String = "", _ name: String = #function) throws -> Setup {
        let dir = try F.tempDir(name)
        let model = dir.appendingPathComponent("model")
        try JobSupport.writeModel(F.decoder(), to: model, tokenizer: F.tokenizerURL, template: F.template)
        _ = try F.recordsFile(64, in: dir)
        let records = try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasSuffix(".jsonl") }!
        let base = try write("""
            model: \(model.path)
            data: [\(dir.appendingPathComponent(records).path)]
            method: lora
            max-steps: \(steps)
            eval-every: 5
            eval-fraction: 0.2
            batch-size: 4
            seq-len: 96
            checkpoint-every: 10
            \(extra)
            """, "base.yaml", in: dir)
        let space = try write("lr: {log-uniform: [1.0e-4, 3.0e-2]}\nlora-r: [2, 4]\n", "space.yaml", in: dir)
        return Setup(dir: dir, base: base, space: space)
    }

    func finch() throws -> String {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        return bin.path
    }

    func trials(_ out: URL) throws -> [[String: Any]] {
        try String(contentsOf: out.appendingPathComponent("trials.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testSweepRunsTrialsAndWritesResultsAndABestRecipeThatTrains() throws {
        let s = try setup(steps: 30)
        let out = s.dir.appendingPathComponent("sweep")
        let r = try ToolProcess.run(try finch(), ["sweep", "--config", s.base.path, "--space", s.space.path, "--trials", "5",
                                                  "--out", out.path, "--search", "tpe", "--seed", "4"], in: s.dir)
        XCTAssertEqual(r.status, 0, r.output)
        let t = try trials(out)
        XCTAssertEqual(t.map { $0["trial"] as? Int }, [0, 1, 2, 3, 4])
        XCTAssertTrue(t.allSatisfy { ["completed", "stopped"].contains($0["status"] as? String) }, "\(t)")
        XCTAssertTrue(t.contains { $0["status"] as? String == "completed" })
        for name in ["results.md", "sweep.svg", "best.yaml", "sweep.json", "trials/000/metrics.jsonl", "trials/000.yaml", "trials/000.log"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "missing \(name)")
        }
        // The results table is sorted: completed trials by eval_loss, lowest first.
        let completed = t.filter { $0["status"] as? String == "completed" }.compactMap { $0["value"] as? Double }.sorted()
        let best = try String(contentsOf: out.appendingPathComponent("best.yaml"), encoding: .utf8)
        XCTAssertTrue(best.contains(String(format: "eval_loss %.4f", completed[0])), best)
        let svg = try String(contentsOf: out.appendingPathComponent("sweep.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("eval_loss against lr") && svg.contains("Evaluation curves"), svg)
        // best.yaml is a recipe `finch sft` runs as it is.
        let again = try ToolProcess.run(try finch(), ["sft", "--config", out.appendingPathComponent("best.yaml").path,
                                                      "--out", s.dir.appendingPathComponent("best-run").path, "--max-steps", "2"], in: s.dir)
        XCTAssertEqual(again.status, 0, again.output)
    }

    /// Stopped by Ctrl-C (SIGINT to the sweep) and then killed outright: each time the same command finishes the
    /// sweep with every trial exactly once, running trials continued from their checkpoints. A killed sweep's trial
    /// notices, checkpoints and ends by itself; the resumed sweep waits for it before continuing the trial.
    func testSweepResumesAfterCtrlCAndAfterSIGKILL() throws {
        let s = try setup(steps: 400)
        let out = s.dir.appendingPathComponent("sweep")
        let args = ["sweep", "--config", s.base.path, "--space", s.space.path, "--trials", "3", "--out", out.path,
                    "--search", "random", "--no-halving", "--parallel", "1"]
        for signal in [SIGINT, SIGKILL] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try finch())
            p.arguments = args
            p.currentDirectoryURL = s.dir
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run()
            // Wait for the running trial's first checkpoint, then stop the sweep.
            let deadline = Date().addingTimeInterval(120)
            func hasCheckpoint() -> Bool {
                let dirs = (try? FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("trials").path)) ?? []
                return dirs.contains { d in
                    let c = out.appendingPathComponent("trials/\(d)/checkpoints")
                    return ((try? FileManager.default.contentsOfDirectory(atPath: c.path)) ?? []).contains { $0.hasPrefix("step-") }
                        && !FileManager.default.fileExists(atPath: out.appendingPathComponent("trials/\(d)/summary.json").path)
                }
            }
            while !hasCheckpoint() && p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            XCTAssertTrue(p.isRunning, "the sweep ended before it could be stopped")
            kill(p.processIdentifier, signal)
            p.waitUntilExit()
            if signal == SIGINT { XCTAssertEqual(p.terminationStatus, 130, "an interrupted sweep exits 130") }
            let t = try trials(out)
            XCTAssertTrue(t.contains { $0["status"] as? String == "running" }, "a trial was running when the sweep stopped")
        }
        let r = try ToolProcess.run(try finch(), args, in: s.dir)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resuming the sweep"), r.output)
        let t = try trials(out)
        XCTAssertEqual(t.map { $0["trial"] as? Int }, [0, 1, 2])
        XCTAssertTrue(t.allSatisfy { $0["status"] as? String == "completed" }, "\(t)")
        // A resumed trial continued from its checkpoint: its metrics have each step once.
        for i in 0..<3 {
            let steps = try MetricsLog.read(out.appendingPathComponent(String(format: "trials/%03d/metrics.jsonl", i))).compactMap { r -> Int? in
                r["loss"] != nil ? (r["step"] as? NSNumber)?.intValue : nil
            }
            XCTAssertEqual(steps, Array(Set(steps)).sorted(), "trial \(i): steps logged twice")
        }
        // Other settings on the same folder are refused.
        let other = try ToolProcess.run(try finch(), args.map { $0 == "3" ? "4" : $0 }, in: s.dir)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.output.contains("other settings"), other.output)
    }

    func testExactMatchTrialsAreEvaluatedWithFinchEval() throws {
        let s = try setup(steps: 10, extra: "merge: true")
        let evalRows = (0..<6).map { i in "{\"instruction\": \"What colour is the cat number \(i)?\", \"output\": \"The cat is red.\", \"task\": \"colour\", \"answer\": \"The cat is red.\"}" }
        let evalData = try write(evalRows.joined(separator: "\n") + "\n", "eval.jsonl", in: s.dir)
        let out = s.dir.appendingPathComponent("sweep")
        let r = try ToolProcess.run(try finch(), ["sweep", "--config", s.base.path, "--space", s.space.path, "--trials", "2", "--out", out.path,
                                                  "--metric", "exact_match", "--eval-data", evalData.path, "--eval-max-tokens", "6", "--no-halving"], in: s.dir)
        XCTAssertEqual(r.status, 0, r.output)
        for t in try trials(out) {
            XCTAssertEqual(t["status"] as? String, "completed", "\(t)")
            let v = try XCTUnwrap(t["value"] as? Double, "\(t)")
            XCTAssertTrue((0...1).contains(v))
            XCTAssertNotNil(t["stderr"])
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("trials/000/eval/eval.json").path))
    }

    /// `finch sft --eval-generate FILE` answers the file's first checkable rows at every evaluation and logs their exact
    /// match beside the loss; methods whose generation is not the decoder's own are refused before training.
    func testSFTEvalGenerateLogsExactMatchAtEveryEvaluation() throws {
        let s = try setup(steps: 10)
        let evalData = try write(Self.colourRows(5), "eval.jsonl", in: s.dir)
        let run = s.dir.appendingPathComponent("run")
        let r = try ToolProcess.run(try finch(), ["sft", "--config", s.base.path, "--out", run.path, "--eval-generate", evalData.path,
                                                  "--eval-generate-limit", "3", "--eval-generate-max-tokens", "5"], in: s.dir)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("eval-generate: 3 checkable rows"), r.output)
        let evals = try MetricsLog.read(run.appendingPathComponent("metrics.jsonl")).filter { $0["eval_loss"] != nil }
        XCTAssertEqual(evals.compactMap { ($0["step"] as? NSNumber)?.intValue }, [5, 10])
        for e in evals {
            let em = try XCTUnwrap((e["eval_exact_match"] as? NSNumber)?.doubleValue, "\(e)")
            XCTAssertTrue([0, 1.0 / 3, 2.0 / 3, 1].contains { abs($0 - em) < 1e-9 }, "exact match of 3 rows: \(em)")
            XCTAssertNotNil(e["eval_exact_match_stderr"])
        }
        let prefix = try ToolProcess.run(try finch(), ["sft", "--config", s.base.path, "--out", s.dir.appendingPathComponent("prefix").path,
                                                       "--method", "prefix", "--eval-generate", evalData.path], in: s.dir)
        XCTAssertNotEqual(prefix.status, 0)
        XCTAssertTrue(prefix.output.contains("does not work with --method prefix"), prefix.output)
    }

    /// With --rung-metric exact_match the trials answer the evaluation rows as they train, and the halving ranks those
    /// answers (higher is better) instead of the loss.
    func testExactMatchRungsRankTheTrialsAnswers() throws {
        let s = try setup(steps: 20, extra: "merge: true")
        let evalData = try write(Self.colourRows(6), "eval.jsonl", in: s.dir)
        let out = s.dir.appendingPathComponent("sweep")
        let r = try ToolProcess.run(try finch(), ["sweep", "--config", s.base.path, "--space", s.space.path, "--trials", "3", "--out", out.path,
                                                  "--metric", "exact_match", "--eval-data", evalData.path, "--eval-max-tokens", "6",
                                                  "--rung-metric", "exact_match", "--rung-limit", "4", "--grace-steps", "5", "--eta", "2",
                                                  "--parallel", "1"], in: s.dir)
        XCTAssertEqual(r.status, 0, r.output)
        for t in try trials(out) {
            let curve = try XCTUnwrap(t["curve"] as? [[Double]], "\(t)")
            XCTAssertFalse(curve.isEmpty, "\(t)")
            XCTAssertTrue(curve.allSatisfy { (0...1).contains($0[1]) && ($0[1] * 4).rounded() == $0[1] * 4 }, "exact match of 4 rows: \(curve)")
            let rungs = try XCTUnwrap(t["rungs"] as? [String: Double])
            XCTAssertNotNil(rungs["0"], "every trial reaches rung 0 (step 5): \(t)")
            let recipe = try String(contentsOf: out.appendingPathComponent(String(format: "trials/%03d.yaml", t["trial"] as! Int)), encoding: .utf8)
            XCTAssertTrue(recipe.contains("eval-generate: \(evalData.path)") && recipe.contains("eval-generate-limit: 4"), recipe)
        }
        let svg = try String(contentsOf: out.appendingPathComponent("sweep.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("eval exact match"), "the curves panel names its metric")
    }

    static func colourRows(_ n: Int) -> String {
        (0..<n).map { i in "{\"instruction\": \"What colour is the cat number \(i)?\", \"output\": \"The cat is red.\", \"task\": \"colour\", \"answer\": \"The cat is red.\"}" }
            .joined(separator: "\n") + "\n"
    }

    func testBadSweepsFailBeforeAnyTrialStarts() throws {
        let s = try setup()
        let bin = try finch()
        let cases: [([String], String)] = [
            (["--space", try write("", "empty.yaml", in: s.dir).path], "search space is empty"),
            (["--space", try write("lora-rank: [2, 4]\n", "typo.yaml", in: s.dir).path], "did you mean"),
            (["--space", s.space.path, "--metric", "bleu"], "--metric bleu"),
            (["--space", s.space.path, "--metric", "exact_match"], "needs --eval-data"),
            (["--space", s.space.path, "--metric", "exact_match", "--rung-metric", "exact_match"], "needs --eval-data"),
            (["--space", s.space.path, "--rung-metric", "exact_match", "--eval-data", s.base.path], "goes with --metric exact_match"),
            (["--space", s.space.path, "--rung-metric", "bleu"], "--rung-metric bleu"),
            (["--space", s.space.path, "--config", try write("model: nowhere\ndata: [x.jsonl]\neval-every: -1\n", "noeval.yaml", in: s.dir).path], "eval-every is -1"),
        ]
        for (extra, expected) in cases {
            let out = s.dir.appendingPathComponent("bad-\(UUID().uuidString.prefix(6))")
            var args = ["sweep", "--config", s.base.path, "--trials", "2", "--out", out.path]
            for i in stride(from: 0, to: extra.count, by: 2) {
                if let k = args.firstIndex(of: extra[i]) { args[k + 1] = extra[i + 1] } else { args += [extra[i], extra[i + 1]] }
            }
            let r = try ToolProcess.run(bin, args, in: s.dir)
            XCTAssertNotEqual(r.status, 0, "\(extra)")
            XCTAssertTrue(r.output.contains(expected), "\(extra): \(r.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(extra): a trial folder was made")
        }
    }
}
