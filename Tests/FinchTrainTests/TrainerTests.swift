import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

final class TrainerTests: XCTestCase {
    typealias F = TrainerFixture

    /// Two micro-batches with gradientScale = 1/(tokens of both) give the gradients of the one large batch.
    func testGradientAccumulationEqualsLargeBatch() throws {
        let dir = try F.tempDir()
        let data = try F.dataset(8, in: dir)
        let reader = try DatasetReader(data, options: .init(shuffle: false), tokenizer: F.tokenizer)
        let examples = try (0..<4).map { _ in try reader.next() }
        let big = Batch(examples, length: 96, padID: reader.padID)
        let small = [Batch(Array(examples[0..<1]), length: 96, padID: reader.padID),
                     Batch(Array(examples[1..<4]), length: 96, padID: reader.padID)]
        XCTAssertNotEqual(small[0].trainedTokens, small[1].trainedTokens / 3, "micro-batches should differ in trained tokens")

        let a = CausalLMModel(decoder: F.decoder())
        a.allocateGradients(); a.zeroGradients()
        let bigLoss = Trainer.accumulateGradients(a, microBatches: [big])
        let b = CausalLMModel(decoder: F.decoder())
        b.allocateGradients(); b.zeroGradients()
        let accLoss = Trainer.accumulateGradients(b, microBatches: small)

        XCTAssertEqual(bigLoss.trainedTokens, accLoss.trainedTokens)
        XCTAssertEqual(bigLoss.loss, accLoss.loss, accuracy: 1e-5 * bigLoss.loss)
        var worst: Float = 0
        for (name, g) in a.gradients {
            let h = b.gradients[name]!
            var scale: Float = 1e-6
            for i in 0..<g.count { scale = max(scale, abs(g[i])) }
            for i in 0..<g.count { worst = max(worst, abs(g[i] - h[i]) / scale) }
        }
        XCTAssertLessThan(worst, 1e-4, "accumulated gradients differ from the large batch's")

        // Per-micro-batch means (the wrong way) differ measurably: the test is sensitive.
        let c = CausalLMModel(decoder: F.decoder())
        c.allocateGradients(); c.zeroGradients()
        for mb in small { _ = c.loss(mb, gradientScale: 0.5 / Float(mb.trainedTokens)); c.backward() }
        var diff: Float = 0
        for (name, g) in a.gradients { let h = c.gradients[name]!; for i in 0..<g.count { diff = max(diff, abs(g[i] - h[i])) } }
        XCTAssertGreaterThan(diff, 1e-6)
    }

    /// N steps == N/2 steps, Ctrl-C (checkpoint), resume, N/2 steps: identical losses and weights, bitwise.
    func testExactResume() throws { try checkExactResume(dropout: 0, lora: false) }

    /// The same with residual dropout and a LoRA adapter with LoRA dropout: the masks are drawn from the
    /// seed and the micro-batch counter, so the resumed half sees exactly the uninterrupted run's masks.
    func testExactResumeWithDropoutAndLoRA() throws { try checkExactResume(dropout: 0.1, lora: true) }
    func testExactResumeWithDropout() throws { try checkExactResume(dropout: 0.1, lora: false) }
    func testExactResumeWithLoRADropout() throws { try checkExactResume(dropout: 0, lora: true) }
    func testExactResumeWithLoRANoDropout() throws { try checkExactResume(dropout: 0, lora: true, loraDropout: 0) }

    private func checkExactResume(dropout: Double, lora: Bool, loraDropout: Double = 0.1) throws {
        let dir = try F.tempDir()
        let data = try F.dataset(20, in: dir)
        var cfg = F.trainerConfig(steps: 6)
        cfg.gradAccum = 2
        cfg.evalEvery = 2
        cfg.replayRatio = 0.25
        cfg.dropout = dropout
        func model() throws -> CausalLMModel {
            let decoder = F.decoder()
            guard lora else { return CausalLMModel(decoder: decoder) }
            var o = PEFTOptions()
            o.loraDropout = loraDropout
            let peft = try XCTUnwrap(try PEFTMethods.make("lora", options: o, decoder: decoder, tokenizer: nil, seed: 4))
            peft.attach(to: decoder)
            return CausalLMModel(decoder: decoder, peft: peft)
        }
        func reader() throws -> DatasetReader {
            try DatasetReader(data, options: .init(seed: 5, shuffle: true, split: .train(heldOut: 0.2)), tokenizer: F.tokenizer)
        }
        func evalReader() throws -> DatasetReader {
            try DatasetReader(data, options: .init(shuffle: false, split: .heldOut(0.2)), tokenizer: F.tokenizer)
        }
        func replay() throws -> DatasetReader { try DatasetReader(data, options: .init(seed: 9), tokenizer: F.tokenizer) }

        // Uninterrupted.
        let fullModel = try model()
        let full = try Trainer(config: cfg, model: fullModel, train: reader(), eval: evalReader(), replay: replay(),
                               run: RunFolder(url: dir.appendingPathComponent("full")))
        _ = try full.fit()

        // Interrupted after 3 steps by a stop request (as Ctrl-C), then resumed in a fresh process state.
        let runB = dir.appendingPathComponent("split")
        let m1 = try model()
        let first = try Trainer(config: cfg, model: m1, train: reader(), eval: evalReader(), replay: replay(),
                                run: RunFolder(url: runB), progress: ProgressReporter(sink: ProgressRecorder(stopAfterStep: 3)))
        let s1 = try first.fit()
        XCTAssertEqual(s1.endReason, "interrupted")
        XCTAssertEqual(s1.steps, 3)

        let m2 = try model()
        let second = try Trainer(config: cfg, model: m2, train: reader(), eval: evalReader(), replay: replay(),
                                 run: RunFolder(url: runB))
        XCTAssertTrue(try second.resumeLatest())
        XCTAssertEqual(second.session.state.step, 3)
        let s2 = try second.fit()
        XCTAssertEqual(s2.steps, 6)

        XCTAssertEqual(full.stepLosses, first.stepLosses + second.stepLosses, "losses differ after resume")
        for (name, t) in fullModel.decoder.parameters {
            XCTAssertEqual(t.array, m2.decoder.parameters[name]!.array, "weight \(name) differs after resume")
        }
        if lora {
            let a = try XCTUnwrap(fullModel.peft).parameters, b = try XCTUnwrap(m2.peft).parameters
            XCTAssertFalse(a.isEmpty)
            for (name, t) in a { XCTAssertEqual(t.array, b[name]?.array, "adapter \(name) differs after resume") }
        }
        XCTAssertEqual(full.session.state.bestEvalLoss, second.session.state.bestEvalLoss)
        XCTAssertEqual(full.session.state.rng, second.session.state.rng)
        // metrics.jsonl has each step once.
        let steps = try MetricsLog.read(RunFolder(url: runB).metricsURL).filter { $0["loss"] != nil }.compactMap { ($0["step"] as? NSNumber)?.intValue }
        XCTAssertEqual(steps, [1, 2, 3, 4, 5, 6])
    }

    /// freeze: only the head (final norm + untied lm_head) changes; --train-layers 1 adds the top block.
    func testFreezeTrainsOnlyTheHead() throws {
        let dir = try F.tempDir()
        let data = try F.dataset(12, in: dir)
        for trainLayers in [0, 1] {
            let model = CausalLMModel(decoder: F.decoder())
            let before = F.snapshot(model.decoder)
            var cfg = F.trainerConfig(steps: 3, method: "freeze")
            cfg.trainLayers = trainLayers
            let t = try Trainer(config: cfg, model: model, train: DatasetReader(data, tokenizer: F.tokenizer),
                                run: RunFolder(url: dir.appendingPathComponent("run\(trainLayers)")))
            _ = try t.fit()
            var changed = Set<String>()
            for (n, t) in model.decoder.parameters where t.array != before[n]! { changed.insert(n) }
            var expected: Set<String> = ["lm_head.weight", "model.norm.weight"]
            if trainLayers == 1 { expected.formUnion(TrainableSet.blockNames(model.decoder.config, layer: 1)) }
            XCTAssertEqual(changed, expected, "train-layers \(trainLayers)")
        }
    }

    /// --cache-features: the trunk runs once per distinct row; later epochs reuse it; only lm_head trains.
    func testCacheFeaturesReusesTrunkOutputs() throws {
        let dir = try F.tempDir()
        let data = try F.dataset(8, in: dir)
        let model = CausalLMModel(decoder: F.decoder(), cacheFeatures: true)
        let before = F.snapshot(model.decoder)
        var cfg = F.trainerConfig(steps: 6, method: "freeze")
        cfg.cacheFeatures = true
        let t = try Trainer(config: cfg, model: model, train: DatasetReader(data, tokenizer: F.tokenizer),
                            run: RunFolder(url: dir.appendingPathComponent("run")))
        let s = try t.fit()
        XCTAssertEqual(model.featureCache!.misses, 8, "each of the 8 rows computed once")
        XCTAssertEqual(model.featureCache!.hits, 24)
        let changed = model.decoder.parameters.filter { $0.value.array != before[$0.key]! }.map(\.key)
        XCTAssertEqual(changed, ["lm_head.weight"])
        XCTAssertLessThan(s.lastLoss!, s.firstLoss!)

        // The cached path computes the same loss as the plain frozen decoder.
        let r = try DatasetReader(data, options: .init(shuffle: false), tokenizer: F.tokenizer)
        let batch = try r.nextBatch(size: 4, length: 96)
        let plain = CausalLMModel(decoder: model.decoder)
        let a = plain.loss(batch, gradientScale: nil), b = model.loss(batch, gradientScale: nil)
        XCTAssertEqual(a.nllSum, b.nllSum, accuracy: 1e-4 * a.nllSum)
        XCTAssertThrowsError(try TrainableSet.names(config: F.config(.gpt2), method: "freeze", cacheFeatures: true))
    }

    /// Gradual unfreezing: head first, then one block from the top every N steps; new tensors join the optimizer.
    func testUnfreezeSchedule() throws {
        let c = F.config()
        let head = Set(TrainableSet.headNames(c))
        XCTAssertEqual(try TrainableSet.names(config: c, method: "freeze", unfreezeEvery: 2, step: 0), head)
        XCTAssertEqual(try TrainableSet.names(config: c, method: "freeze", unfreezeEvery: 2, step: 1), head)
        XCTAssertEqual(try TrainableSet.names(config: c, method: "freeze", unfreezeEvery: 2, step: 2),
                       head.union(TrainableSet.blockNames(c, layer: 1)))
        XCTAssertEqual(try TrainableSet.names(config: c, method: "freeze", unfreezeEvery: 2, step: 5),
                       head.union(TrainableSet.blockNames(c, layer: 1)).union(TrainableSet.blockNames(c, layer: 0)))
        XCTAssertEqual(try TrainableSet.names(config: c, method: "full", unfreezeEvery: 2, step: 4),
                       Set(c.parameterShapes().map(\.name)), "full + unfreezing ends with everything")

        let dir = try F.tempDir()
        let data = try F.dataset(12, in: dir)
        let model = CausalLMModel(decoder: F.decoder())
        let before = F.snapshot(model.decoder)
        var cfg = F.trainerConfig(steps: 3, method: "freeze")
        cfg.unfreezeEvery = 2
        let t = try Trainer(config: cfg, model: model, train: DatasetReader(data, tokenizer: F.tokenizer),
                            run: RunFolder(url: dir.appendingPathComponent("run")))
        XCTAssertEqual(Set(t.session.optimizer.parameterNames), head)
        _ = try t.fit()
        XCTAssertEqual(Set(t.session.optimizer.parameterNames), head.union(TrainableSet.blockNames(c, layer: 1)))
        XCTAssertEqual(t.session.optimizer.state(of: "model.layers.1.mlp.up_proj.weight")?.step, 1, "unfrozen before step 3")
        XCTAssertEqual(model.decoder.parameters["model.layers.0.mlp.up_proj.weight"]!.array, before["model.layers.0.mlp.up_proj.weight"]!)
    }

    /// Discriminative rates: block i of L gets f^(L−i), embeddings f^(L+1), head 1; norms/biases no decay.
    func testLayerLRDecayGroups() throws {
        for flavour in [Flavour.llama, .gpt2] {
            let c = F.config(flavour)
            let groups = TrainableSet.decoderGroups(Set(c.parameterShapes().map(\.name)), config: c, layerLrDecay: 0.5)
            let byLabel = Dictionary(uniqueKeysWithValues: groups.map { ($0.label, $0) })
            XCTAssertEqual(byLabel["layers.1"]?.lrMultiplier, 0.5)
            XCTAssertEqual(byLabel["layers.0"]?.lrMultiplier, 0.25)
            XCTAssertEqual(byLabel["layers.0.no_decay"]?.lrMultiplier, 0.25)
            XCTAssertEqual(byLabel["head"]?.lrMultiplier, 1)
            XCTAssertEqual(byLabel["head"]?.weightDecay, true)
            XCTAssertEqual(byLabel["head.no_decay"]?.weightDecay, false)
            XCTAssertTrue(byLabel["layers.0.no_decay"]!.names.allSatisfy { $0.contains("norm") || $0.contains("ln_") || $0.hasSuffix(".bias") })
            XCTAssertFalse(byLabel["layers.0"]!.names.contains { $0.contains("norm") || $0.hasSuffix(".bias") })
            if flavour == .llama { XCTAssertEqual(byLabel["embeddings"]?.lrMultiplier, 0.125) }
            // Every parameter in exactly one group.
            XCTAssertEqual(groups.flatMap(\.names).sorted(), c.parameterShapes().map(\.name).sorted())
        }
    }
}
