import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// A bottleneck adapter trained by `finch sft --method adapter` is a PPO policy as its adapter folder: PPO keeps
/// training the adapter against a frozen copy of it (switching it off would give the base, not the SFT policy), and
/// the result is again an adapter folder over the same base. Trainers that cannot serve it refuse it by name.
final class PPOAdapterPolicyTests: XCTestCase {
    func adapterFolder(in dir: URL) throws -> (base: URL, adapter: URL) {
        let base = try RLHFFixture.policyFolder(in: dir)
        let folder = try HFModelFolder.read(base)
        let module = try AdapterModule(options: AdapterOptions(size: 8, upInitStd: 0.05), config: folder.config, seed: 3)
        let adapter = dir.appendingPathComponent("adapter")
        try module.save(to: adapter, baseModel: base.path)
        return (base, adapter)
    }

    func testPPOContinuesABottleneckAdapterAgainstAFrozenCopy() throws {
        let dir = try TrainerFixture.tempDir()
        let (_, adapter) = try adapterFolder(in: dir)
        typealias t = PPOTrainingTests
        let prompts = try t.prompts(in: dir)
        var o = t.options(iterations: 2)
        o.common.method = "adapter"
        let ppo = try t.trainer(dir, adapter, prompts, o)
        try ppo.fit()
        let records = try MetricsLog.read(ppo.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(records.count, 2)
        // The first rollout is scored by a policy equal to its reference.
        XCTAssertEqual((records[0]["kl"] as? NSNumber)?.doubleValue ?? .nan, 0, accuracy: 1e-5)
        let final = ppo.run.url.appendingPathComponent("final")
        XCTAssertEqual(try PEFTAdapterFolder.peftType(of: final), "ADAPTER")
        let config = try HFModelFolder.read(RLHFFixture.policyFolder(in: try TrainerFixture.tempDir())).config
        let before = try AdapterModule(folder: adapter, config: config), after = try AdapterModule(folder: final, config: config)
        let moved = before.parameters.keys.contains { before.parameters[$0]!.array != after.parameters[$0]!.array }
        XCTAssertTrue(moved, "PPO did not train the adapter")
        XCTAssertNotNil(try EvalModel(folder: final).decoder.hooks)   // served with its base, as the SFT adapter was
    }

    func testABottleneckPolicyNeedsMethodAdapterAndOtherTrainersRefuseIt() throws {
        let dir = try TrainerFixture.tempDir()
        let (_, adapter) = try adapterFolder(in: dir)
        typealias t = PPOTrainingTests
        XCTAssertThrowsError(try t.trainer(dir, adapter, try t.prompts(in: dir), t.options(iterations: 1))) { e in
            XCTAssertTrue("\(e)".contains("--method adapter"), "\(e)")
        }
        XCTAssertThrowsError(try LoadedModelFolder(adapter, causalLM: "finch dpo --model")) { e in
            XCTAssertTrue("\(e)".contains("finch dpo --model") && "\(e)".contains("served by ppo"), "\(e)")
        }
    }

    func testALoRAAdapterFolderStandsForItsMergedModel() throws {
        let dir = try TrainerFixture.tempDir()
        let base = try RLHFFixture.policyFolder(in: dir)
        let folder = try HFModelFolder.read(base)
        let decoder = try Decoder(config: folder.config, parameters: folder.parameters)
        var o = PEFTOptions(); o.loraR = 4
        let lora = try PEFTMethods.make("lora", options: o, decoder: decoder, tokenizer: nil, seed: 5)!
        for (name, p) in lora.parameters where name.contains("lora_B") { for i in 0..<p.count { p.ptr[i] = 0.01 * Float(i % 7 + 1) } }
        let adapterDir = dir.appendingPathComponent("lora")
        try lora.save(to: adapterDir, baseModel: base.path)
        let loaded = try LoadedModelFolder(adapterDir, causalLM: "finch dpo --model")
        let (_, weights) = try PEFTAdapterFolder.loadLoRA(adapterDir)
        let merged = try LoRAMerger.merge(folder.parameters, config: folder.config, weights: weights)
        XCTAssertEqual(loaded.folder.parameters.keys.sorted(), merged.keys.sorted())
        for (k, v) in merged { XCTAssertEqual(loaded.folder.parameters[k]!.array, v.array, k) }
        XCTAssertNotEqual(loaded.folder.parameters.keys.filter { loaded.folder.parameters[$0]!.array != folder.parameters[$0]!.array }.count, 0)
    }
}
