import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchTrain
import FinchData
import FinchDistributed

/// `mpirun -np N finch …` on this machine's loopback: N ranks of micro-batch b against one process with batch N·b.
///
/// What is compared, and how closely:
/// - against the plain single process with N times the rows per step (`--grad-accum N` for sft and pretrain, an N·b
///   pair batch for reward and DPO; gradients accumulated in one buffer):
///   every step's loss within 1e-6 relative. Its weights differ in the last bits of the gradient sum, and AdamW's first
///   steps turn a gradient that is only rounding noise (GPT-2's key bias: its true gradient is 0, softmax is
///   shift-invariant) into ±lr, so weights are not compared against it;
/// - against one process with `--simulate-ranks N` (the same rows, the ranks' gradients summed in MPI's grouping):
///   losses within 1e-6 relative and every final weight within 1e-6 of the tensor's largest magnitude (they come out
///   bit-identical).
/// The launcher flags (root, oversubscription, TCP on loopback) are `MPILauncher.flags`, as the README gives them.
final class DataParallelTests: XCTestCase {
    func finch() throws -> URL {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        return bin
    }

    func testPretrainOnTwoAndThreeRanksEqualsOneProcess() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let text = try MPILauncher.textFile(in: dir)
        // A tokenizer trained once, shared by every run.
        let bin = try finch().path
        let tok = dir.appendingPathComponent("tok")
        let t = try ToolProcess.run(bin, ["pretrain", "--data", text.path, "--vocab-size", "300", "--max-steps", "1", "--batch-size", "2",
                                          "--seq-len", "32", "--threads", "1", "--out", tok.path], in: dir)
        XCTAssertEqual(t.status, 0, t.output)
        let common = ["pretrain", "--data", tok.appendingPathComponent("data/train").path, "--tokenizer",
                      tok.appendingPathComponent("tokenizer/tokenizer.model").path, "--preset", "tiny", "--max-steps", "4",
                      "--batch-size", "2", "--seq-len", "32", "--threads", "1", "--eval-every=-1", "--lr", "1e-3",
                      // 10 KB buckets: many sums, started layer by layer during the backward.
                      "--allreduce-bucket-mb", "0.01"]
        for n in [2, 3] {
            let ranks = dir.appendingPathComponent("ranks\(n)")
            let r = try MPILauncher.run(mpirun, ranks: n, bin, common + ["--out", ranks.path], in: dir)
            XCTAssertEqual(r.status, 0, r.output)
            try compare(ranks, common, n: n, model: "final/model.safetensors", dir: dir)
        }
    }

    func testLoRASFTOnTwoAndThreeRanksEqualsOneProcess() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let data = try TrainerFixture.recordsFile(48, in: dir)
        let common = ["sft", "--model", model.path, "--data", data.path, "--method", "lora", "--lora-r", "4", "--max-steps", "3",
                      "--batch-size", "2", "--seq-len", "128", "--threads", "1", "--eval-fraction", "0", "--lr", "3e-3"]
        for n in [2, 3] {
            let ranks = dir.appendingPathComponent("ranks\(n)")
            let r = try MPILauncher.run(mpirun, ranks: n, try finch().path, common + ["--out", ranks.path], in: dir)
            XCTAssertEqual(r.status, 0, r.output)
            try compare(ranks, common, n: n, model: "final/adapter_model.safetensors", dir: dir)
        }
    }

    /// Reward and DPO: N ranks × b pairs against one process with N·b pairs per step, and with --simulate-ranks N.
    func testRewardAndDPOOnTwoAndThreeRanksEqualOneProcess() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(48, in: dir)
        for method in ["reward", "dpo"] {
            let common = [method, "--model", model.path, "--data", prefs.path, "--steps", "3", "--batch-size", "2", "--threads", "1",
                          "--eval-fraction", "0", "--lr", "1e-3", "--max-length", "128"]
            for n in [2, 3] {
                let ranks = dir.appendingPathComponent("\(method)-ranks\(n)")
                let r = try MPILauncher.run(mpirun, ranks: n, try finch().path, common + ["--out", ranks.path], in: dir)
                XCTAssertEqual(r.status, 0, r.output)
                var plain = common
                plain[plain.firstIndex(of: "--batch-size")! + 1] = "\(2 * n)"
                try compare(ranks, common, n: n, model: "final/model.safetensors", dir: dir, plain: plain, name: method)
            }
        }
    }

    /// GRPO on 2 ranks (each samples and scores half the prompt groups and runs half of every minibatch) against one
    /// process: the same completions and rewards (rows sample with the whole batch's row seeds, and a row's logits do not
    /// depend on its batch-mates), losses within 1e-4 relative, final weights within 1e-5 of each tensor's scale (the
    /// gradient is summed over ranks in another grouping; LoRA dropout is off, as its masks follow the rows' positions).
    func testGRPOOnTwoRanksEqualsOneProcess() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let policy = try RLHFFixture.policyFolder(in: dir)
        let prompts = try PPOTrainingTests.prompts(in: dir)
        let common = ["grpo", "--policy", policy.path, "--prompts", prompts.path, "--iterations", "3", "--group-size", "4",
                      "--batch-size", "4", "--minibatches", "2", "--inner-iterations", "2", "--max-new-tokens", "6",
                      "--eval-prompts", "4", "--eval-fraction", "0.2", "--max-length", "48", "--overlong", "truncate",
                      "--lr", "1e-2", "--schedule", "constant", "--method", "lora", "--lora-dropout", "0", "--threads", "1",
                      "--reward-command", GRPOTrainingTests.vowels]
        let one = dir.appendingPathComponent("grpo-one"), two = dir.appendingPathComponent("grpo-ranks2")
        let a = try ToolProcess.run(try finch().path, common + ["--out", one.path], in: dir)
        XCTAssertEqual(a.status, 0, a.output)
        let r = try MPILauncher.run(mpirun, ranks: 2, try finch().path, common + ["--out", two.path], in: dir)
        XCTAssertEqual(r.status, 0, r.output)
        try compareRL(one, two, equal: ["reward", "completion_length"], close: ["loss"], weights: ["final/model.safetensors"], name: "grpo")
    }

    /// An RL run on ranks against one process: one record per iteration, `equal` keys identical, `close` keys within
    /// 1e-4 relative, and every tensor of `weights` within 1e-5 of its largest magnitude.
    func compareRL(_ one: URL, _ ranks: URL, equal: [String], close: [String], weights: [String], name: String) throws {
        func records(_ run: URL) throws -> [[String: Any]] { try MetricsLog.read(run.appendingPathComponent("metrics.jsonl")).filter { $0["loss"] != nil } }
        let x = try records(one), y = try records(ranks)
        XCTAssertEqual(x.count, 3, name); XCTAssertEqual(y.count, 3, name)
        for (p, q) in zip(x, y) {
            for key in equal { XCTAssertEqual(p[key] as? Double, q[key] as? Double, "\(name) \(key): \(p) vs \(q)") }
            for key in close {
                let (l1, l2) = (try XCTUnwrap(p[key] as? Double), try XCTUnwrap(q[key] as? Double))
                XCTAssertLessThanOrEqual(abs(l1 - l2), 1e-4 * max(abs(l1), 1e-2), "\(name) \(key) \(l1) vs \(l2)")
            }
        }
        for file in weights {
            let w = try SafeTensors.File(url: one.appendingPathComponent(file)), v = try SafeTensors.File(url: ranks.appendingPathComponent(file))
            for t in w.entries.keys {
                let p = try w.tensor(t).array, q = try v.tensor(t).array
                let scale = max(p.map { abs($0) }.max() ?? 0, 1e-30)
                let diff = zip(p, q).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "\(name): final \(t) differs by \(diff)")
            }
        }
    }

    /// PPO on 2 ranks against one process, with a value head (GAE, rewards normalised and advantages whitened over the
    /// whole gathered rollout) and with RLOO: the same rollouts and scores, losses within 1e-4 relative (PPO's losses are
    /// small differences of clipped terms, and every later minibatch starts from weights that differ in the last bits),
    /// final weights (policy and value head) within 1e-5 of each tensor's scale.
    func testPPOOnTwoRanksEqualsOneProcess() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let policy = try RLHFFixture.policyFolder(in: dir)
        let prompts = try PPOTrainingTests.prompts(in: dir)
        for estimator in ["gae", "rloo"] {
            let common = ["ppo", "--policy", policy.path, "--prompts", prompts.path, "--iterations", "3", "--batch-size", "8",
                          "--samples-per-prompt", "2", "--ppo-epochs", "2", "--minibatches", "2", "--max-new-tokens", "6",
                          "--eval-prompts", "4", "--eval-fraction", "0.2", "--max-length", "48", "--overlong", "truncate",
                          "--lr", "1e-2", "--schedule", "constant", "--method", "lora", "--lora-dropout", "0", "--threads", "1",
                          "--estimator", estimator, "--normalize-rewards", "--reward-command", GRPOTrainingTests.vowels]
            let one = dir.appendingPathComponent("ppo-\(estimator)-one"), two = dir.appendingPathComponent("ppo-\(estimator)-ranks2")
            let a = try ToolProcess.run(try finch().path, common + ["--out", one.path], in: dir)
            XCTAssertEqual(a.status, 0, a.output)
            let r = try MPILauncher.run(mpirun, ranks: 2, try finch().path, common + ["--out", two.path], in: dir)
            XCTAssertEqual(r.status, 0, r.output)
            try compareRL(one, two, equal: ["reward", "response_length"], close: ["loss", "kl", "policy_loss"],
                          weights: ["final/model.safetensors"] + (estimator == "gae" ? ["final/value_head.safetensors"] : []), name: estimator)
        }
    }

    /// A rank skips the rows of the others: `skip(n)` leaves the cursor where n `next()` calls would, across epochs.
    func testSkipMovesTheCursorAsNextDoes() throws {
        let dir = try TrainerFixture.tempDir()
        let data = try TrainerFixture.dataset(10, in: dir)
        let a = try DatasetReader(data, options: .init(seed: 3)), b = try DatasetReader(data, options: .init(seed: 3))
        for n in [1, 3, 7, 10, 13] {
            for _ in 0..<n { _ = try a.next() }
            try b.skip(n)
            XCTAssertEqual(a.cursor, b.cursor, "after \(n)")
            XCTAssertEqual(try a.next().ids, try b.next().ids)
        }
    }

    /// Gradient buckets follow the backward: top layer first, tensors outside the layers last.
    func testLayerIndexOfParameterNames() {
        XCTAssertEqual(GradientReducer.layerIndex(of: "model.layers.11.self_attn.q_proj.weight"), 11)
        XCTAssertEqual(GradientReducer.layerIndex(of: "transformer.h.3.attn.c_attn.bias"), 3)
        XCTAssertEqual(GradientReducer.layerIndex(of: "base_model.model.model.layers.2.mlp.up_proj.lora_A.weight"), 2)
        XCTAssertNil(GradientReducer.layerIndex(of: "transformer.wte.weight"))
        XCTAssertNil(GradientReducer.layerIndex(of: "model.norm.weight"))
        let parts = [1e8, 1, -1e8, 1].map { Tensor(shape: [1], values: [Float($0)]) }
        RankOrderedSum.fold(parts.map(\.buffer))
        let sum = parts[0][0]
        // ((1e8 + 1) + (-1e8 + 1)) in float: 1e8 + 1 rounds to 1e8, so 0; the left-to-right fold would give 1.
        XCTAssertEqual(sum, 0)
        XCTAssertEqual(RankOrderedSum.fold([1, 2, 3]), 6)
    }

    /// Runs the two single-process references of an N-rank run and checks it against them (see the class comment).
    /// `plain`: the one-process command with N times the rows per step (default: `common` with --grad-accum N).
    func compare(_ ranks: URL, _ common: [String], n: Int, model: String, dir: URL, plain: [String]? = nil, name: String = "") throws {
        let bin = try finch().path
        let accum = dir.appendingPathComponent("\(name)accum\(n)"), simulated = dir.appendingPathComponent("\(name)simulated\(n)")
        let a = try ToolProcess.run(bin, (plain ?? common + ["--grad-accum", "\(n)"]) + ["--out", accum.path], in: dir)
        XCTAssertEqual(a.status, 0, a.output)
        let s = try ToolProcess.run(bin, common + ["--simulate-ranks", "\(n)", "--out", simulated.path], in: dir)
        XCTAssertEqual(s.status, 0, s.output)
        let lossesN = try MPILauncher.losses(ranks)
        XCTAssertFalse(lossesN.isEmpty)
        for (name, ref) in [("one process, \(n)× the rows", accum), ("--simulate-ranks \(n)", simulated)] {
            let l = try MPILauncher.losses(ref)
            XCTAssertEqual(l.count, lossesN.count, name)
            for (x, y) in zip(l, lossesN) { XCTAssertLessThanOrEqual(abs(x - y), 1e-6 * abs(x), "\(n) ranks vs \(name): loss \(y) vs \(x)") }
        }
        let w = try SafeTensors.File(url: simulated.appendingPathComponent(model))
        let v = try SafeTensors.File(url: ranks.appendingPathComponent(model))
        XCTAssertEqual(Set(w.entries.keys), Set(v.entries.keys))
        for name in w.entries.keys {
            let x = try w.tensor(name), y = try v.tensor(name)
            let scale = max(x.array.map { abs($0) }.max() ?? 0, 1e-30)
            let diff = zip(x.array, y.array).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(Double(diff), 1e-6 * Double(scale), "\(n) ranks: final \(name) differs by \(diff) (largest |w| \(scale))")
        }
        // Rank 0 wrote the run folder: the final model, and one metrics line per step (checked above).
        XCTAssertTrue(FileManager.default.fileExists(atPath: ranks.appendingPathComponent("final").path))
    }

    /// A run on 2 ranks, continued from its checkpoint on 3 ranks with the same rows per step (2×3 = 3×2 micro-batches),
    /// matches the run that went on without stopping; the cursor's layout note says what changed.
    func testResumeOnAnotherNumberOfRanks() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let data = try TrainerFixture.recordsFile(48, in: dir)
        let bin = try finch().path
        let common = ["sft", "--model", model.path, "--data", data.path, "--method", "lora", "--lora-r", "4", "--max-steps", "4",
                      "--batch-size", "1", "--seq-len", "128", "--threads", "1", "--eval-fraction", "0", "--lr", "3e-3",
                      "--checkpoint-every", "2", "--schedule", "constant"]
        let straight = dir.appendingPathComponent("straight"), split = dir.appendingPathComponent("split")
        let a = try MPILauncher.run(mpirun, ranks: 2, bin, common + ["--grad-accum", "3", "--out", straight.path], in: dir)
        XCTAssertEqual(a.status, 0, a.output)
        // The first half: 2 ranks, stopped after step 2 (--max-steps 2 keeps the same constant schedule).
        var first = common
        first[first.firstIndex(of: "--max-steps")! + 1] = "2"
        let b = try MPILauncher.run(mpirun, ranks: 2, bin, first + ["--grad-accum", "3", "--out", split.path], in: dir)
        XCTAssertEqual(b.status, 0, b.output)
        let c = try MPILauncher.run(mpirun, ranks: 3, bin, common + ["--grad-accum", "2", "--out", split.path, "--resume"], in: dir)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertTrue(c.output.contains("resuming a run of 2 rank(s)"), c.output)
        let x = try MPILauncher.losses(straight), y = try MPILauncher.losses(split)
        XCTAssertEqual(x.count, 4); XCTAssertEqual(y.count, 4)
        for (p, q) in zip(x, y) { XCTAssertLessThanOrEqual(abs(p - q), 1e-6 * abs(p), "resumed on 3 ranks: \(y) vs \(x)") }
        let state = try Checkpoint.state(at: split.appendingPathComponent("checkpoints/step-4"))
        XCTAssertEqual(try state.extras[RankLayout.stateKey]?.decode(RankLayout.self),
                       RankLayout(ranks: 3, microBatchesPerRank: 2, rowsPerMicroBatch: 1))
    }

    /// ZeRO-1: full fine-tuning on 3 ranks, each keeping and updating a third of the AdamW moments, gives bit for bit
    /// the losses, checkpoints (moments included) and final weights of the same run without sharding; a checkpoint it
    /// wrote resumes on 2 ranks with sharding and on one process without, to the same end.
    func testZeRO1GivesTheSameRunAndItsCheckpointsResumeAnywhere() throws {
        let mpirun = try MPILauncher.require()
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let data = try TrainerFixture.recordsFile(48, in: dir)
        let bin = try finch().path
        let common = ["sft", "--model", model.path, "--data", data.path, "--method", "full", "--max-steps", "6",
                      "--batch-size", "1", "--seq-len", "128", "--threads", "1", "--eval-fraction", "0.2", "--eval-every", "2",
                      "--lr", "3e-3", "--checkpoint-every", "2", "--keep-checkpoints", "5", "--schedule", "constant"]
        let plain = dir.appendingPathComponent("plain"), sharded = dir.appendingPathComponent("zero1")
        let a = try MPILauncher.run(mpirun, ranks: 3, bin, common + ["--out", plain.path], in: dir)
        XCTAssertEqual(a.status, 0, a.output)
        let b = try MPILauncher.run(mpirun, ranks: 3, bin, common + ["--zero1", "--out", sharded.path], in: dir)
        XCTAssertEqual(b.status, 0, b.output)
        XCTAssertTrue(b.output.contains("ZeRO-1"), b.output)
        XCTAssertEqual(try MPILauncher.losses(plain), try MPILauncher.losses(sharded))
        func identical(_ file: String, _ x: URL, _ y: URL) throws {
            let w = try SafeTensors.File(url: x.appendingPathComponent(file)), v = try SafeTensors.File(url: y.appendingPathComponent(file))
            XCTAssertEqual(Set(w.entries.keys), Set(v.entries.keys), file)
            for t in w.entries.keys { XCTAssertEqual(try w.tensor(t).array, try v.tensor(t).array, "\(file): \(t)") }
        }
        for file in ["final/model.safetensors", "checkpoints/step-4/optimizer.safetensors", "checkpoints/step-6/optimizer.safetensors",
                     "checkpoints/step-6/trainable.safetensors", "best/optimizer.safetensors"] {
            try identical(file, plain, sharded)
        }
        // The sharded run's step-4 checkpoint continues on 2 ranks (sharded) and on one process (not): both end where
        // the run ended.
        for (ranks, extra) in [(2, ["--zero1"]), (1, [])] {
            let resumed = dir.appendingPathComponent("resumed\(ranks)")
            try FileManager.default.createDirectory(at: resumed.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
            for f in ["config.yaml", "config.json", "data"] {
                try FileManager.default.copyItem(at: sharded.appendingPathComponent(f), to: resumed.appendingPathComponent(f))
            }
            try FileManager.default.copyItem(at: sharded.appendingPathComponent("checkpoints/step-4"), to: resumed.appendingPathComponent("checkpoints/step-4"))
            // Same rows per step as 3 ranks × 1: --grad-accum makes up the difference only for 1 process (3 rows), so
            // compare the 1-process resume to the 3-rank run, and the 2-rank one only for completing.
            var args = common + extra + ["--out", resumed.path, "--resume"]
            if ranks == 1 { args += ["--grad-accum", "3"] }
            let r = ranks == 1 ? try ToolProcess.run(bin, args, in: dir) : try MPILauncher.run(mpirun, ranks: ranks, bin, args, in: dir)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(FileManager.default.fileExists(atPath: resumed.appendingPathComponent("final/model.safetensors").path))
            if ranks == 1 {
                let x = try MPILauncher.losses(sharded).suffix(2), y = try MPILauncher.losses(resumed).suffix(2)
                for (p, q) in zip(x, y) { XCTAssertLessThanOrEqual(abs(p - q), 1e-6 * abs(p), "resumed in one process: \(y) vs \(x)") }
            }
        }
    }

    /// SIGKILL one rank mid-run: mpirun ends the job with an error within the timeout, and the newest checkpoint is
    /// whole: a single process resumes it and finishes.
    func testKilledRankStopsTheOthersAndTheCheckpointResumes() throws {
        let mpirun = try MPILauncher.require()
        let (dir, out, args) = try endlessLoRARun(rankTimeout: 20)
        let r = try MPILauncher.runAndHurt(mpirun, ranks: 3, try finch().path, args, in: dir, signal: SIGKILL,
                                           when: { self.hasCheckpoint(out, atLeast: 3) },
                                           within: 60)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.secondsAfterSignal, 30, "the other ranks went on \(r.secondsAfterSignal) s after rank 1 died: \(r.output)")
        XCTAssertTrue(r.output.contains("rank 1") || r.output.contains("signal 9") || r.output.contains("Killed"), r.output)
        try resumesOnOneProcess(out, args: args)
    }

    /// SIGSTOP one rank (alive but silent): the others give up after --rank-timeout with an error that says so.
    func testHungRankTimesOutWithAClearError() throws {
        let mpirun = try MPILauncher.require()
        let (dir, out, args) = try endlessLoRARun(rankTimeout: 3)
        let r = try MPILauncher.runAndHurt(mpirun, ranks: 2, try finch().path, args, in: dir, signal: SIGSTOP,
                                           when: { self.hasCheckpoint(out, atLeast: 2) },
                                           within: 60)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.secondsAfterSignal, 30, r.output)
        XCTAssertTrue(r.output.contains("did not answer") && r.output.contains("within 3 s"), r.output)
        try resumesOnOneProcess(out, args: args)
    }

    /// A LoRA SFT run that checkpoints every step and would not end by itself, for the fault tests.
    func endlessLoRARun(rankTimeout: Int) throws -> (dir: URL, out: URL, args: [String]) {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let data = try TrainerFixture.recordsFile(48, in: dir)
        let out = dir.appendingPathComponent("run")
        let args = ["sft", "--model", model.path, "--data", data.path, "--method", "lora", "--lora-r", "4", "--max-steps", "100000",
                    "--batch-size", "2", "--seq-len", "128", "--threads", "1", "--eval-fraction", "0", "--checkpoint-every", "1",
                    "--rank-timeout", String(rankTimeout), "--out", out.path]
        return (dir, out, args)
    }

    /// Whether `out` holds a checkpoint of step `step` or later. Only the newest checkpoints are kept, so a fast run
    /// may already have deleted `step-N` itself by the time it is looked for.
    func hasCheckpoint(_ out: URL, atLeast step: Int) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("checkpoints").path)) ?? []
        return names.contains { $0.hasPrefix("step-") && (Int($0.dropFirst(5)) ?? 0) >= step }
    }

    /// The newest checkpoint of `out` loads, and one process resumes it to a finished run.
    func resumesOnOneProcess(_ out: URL, args: [String]) throws {
        let run = try RunFolder(url: out)
        guard let latest = run.latestCheckpoint() else { return XCTFail("no checkpoint in \(out.path)") }
        let state = try Checkpoint.state(at: latest.url)
        XCTAssertEqual(state.step, latest.step)
        _ = try SafeTensors.File(url: latest.url.appendingPathComponent(Checkpoint.weightsFile))
        var resume = args
        resume[resume.firstIndex(of: "--max-steps")! + 1] = "\(latest.step + 2)"
        let r = try ToolProcess.run(try finch().path, resume + ["--resume"], in: out.deletingLastPathComponent())
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resuming a run of"), r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("final").path))
    }
}

/// Starts `finch` under Open MPI's mpirun on this machine.
enum MPILauncher {
    /// Root needs --allow-run-as-root; --oversubscribe lets 3 ranks share 2 cores; the byte transfer goes over TCP on
    /// the loopback interface (as between machines, not through shared memory).
    static var flags: [String] {
        (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"]
    }

    /// mpirun's path; a loud skip when Open MPI is not installed (tools/setup.sh installs it), and under
    /// tools/sanitize.sh (which sets ASAN_OPTIONS): there the finch binary is instrumented but Open MPI is not, and the
    /// plain suite already runs these tests.
    static func require() throws -> String {
        if ProcessInfo.processInfo.environment["ASAN_OPTIONS"] != nil {
            FileHandle.standardError.write(Data("DataParallelTests: SKIPPED under tools/sanitize.sh (ASAN_OPTIONS set): the plain suite runs them\n".utf8))
            throw XCTSkip("data-parallel tests SKIPPED under the sanitizer tier")
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        FileHandle.standardError.write(Data("DataParallelTests: SKIPPED: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev, or tools/setup.sh)\n".utf8))
        throw XCTSkip("mpirun is not installed: data-parallel tests SKIPPED")
    }

    static func run(_ mpirun: String, ranks: Int, _ bin: String, _ args: [String], in dir: URL) throws -> (status: Int32, output: String) {
        try ToolProcess.run(mpirun, flags + ["-np", "\(ranks)", bin] + args, in: dir)
    }

    /// Starts the job, waits until `when()` holds, sends `signal` to rank 1, and waits (up to `within` seconds more)
    /// for mpirun to end; a job still running then is killed and reported with status -1.
    static func runAndHurt(_ mpirun: String, ranks: Int, _ bin: String, _ args: [String], in dir: URL, signal sig: Int32,
                           when ready: () -> Bool, within: Double) throws -> (status: Int32, output: String, secondsAfterSignal: Double) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = flags + ["-np", "\(ranks)", bin] + args
        p.currentDirectoryURL = dir
        let log = dir.appendingPathComponent("mpirun.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle; p.standardError = handle
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let start = Date()
        while !ready() {
            guard p.isRunning, Date().timeIntervalSince(start) < within else {
                XCTFail("the job never reached the point to hurt it: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
                return (-1, "", 0)
            }
            usleep(20_000)
        }
        guard let victim = rankPID(1, under: p.processIdentifier) else {
            XCTFail("no process of rank 1 under mpirun \(p.processIdentifier)")
            return (-1, "", 0)
        }
        kill(victim, sig)
        let hurt = Date()
        while p.isRunning && Date().timeIntervalSince(hurt) < within { usleep(50_000) }
        let seconds = Date().timeIntervalSince(hurt)
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); kill(victim, SIGKILL); return (-1, "still running", seconds) }
        p.waitUntilExit()
        kill(victim, SIGKILL)   // a stopped rank that mpirun did not reap
        try handle.close()
        return (p.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "", seconds)
    }

    /// The process of rank `rank` among mpirun's children (found by OMPI_COMM_WORLD_RANK in its environment).
    static func rankPID(_ rank: Int, under parent: Int32) -> Int32? {
        guard let all = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in all {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == parent,
                  let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            if env.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }) { return pid }
        }
        return nil
    }

    /// The per-step training losses of a run folder's metrics.jsonl.
    static func losses(_ run: URL) throws -> [Double] {
        try MetricsLog.read(run.appendingPathComponent("metrics.jsonl")).compactMap { $0["loss"] as? Double }
    }

    /// A small deterministic text corpus for pretraining.
    static func textFile(in dir: URL) throws -> URL {
        let words = "the cat sat on a mat and dog ran far away from home to see big red ball in park with friends".split(separator: " ")
        var x: UInt64 = 12345
        var lines: [String] = []
        for _ in 0..<300 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            let n = 8 + Int((x >> 33) % 20)
            lines.append((0..<n).map { i in String(words[Int((x >> UInt64(i % 40)) % UInt64(words.count))]) }.joined(separator: " "))
        }
        let u = dir.appendingPathComponent("corpus.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }
}
