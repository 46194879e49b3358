import XCTest
import Foundation
import FinchKernels
import FinchModel
import FinchConformance

/// `llama-lora`, `llama-prompt-tuning`, `llama-prefix-tuning`: PEFT methods against PEFT's own numbers.
/// Shapes and settings come from each case's case.json, config.json and adapter/adapter_config.json.
final class PEFTConformanceTests: XCTestCase {
    func testLoRA() throws { try runKind("llama-lora", run: runLoRA) }
    func testPromptTuning() throws { try runKind("llama-prompt-tuning", run: runPromptTuning) }
    func testPrefixTuning() throws { try runKind("llama-prefix-tuning", run: runPrefixTuning) }

    func runKind(_ kind: String, run: (Case, Checker) throws -> Void) throws {
        let cases = try Conformance.requireCases(kind: kind)
        for c in cases {
            let checker = Checker(c)
            do { try run(c, checker) } catch { checker.fail("\(error)") }
            XCTAssert(Conformance.report(c, checker), "\(c.name) failed")
        }
    }

    struct Inputs {
        let ids: [Int], mask: [Int]?, labels: [Int], batch: Int, length: Int
        init(_ c: Case) {
            let ids2D = JSONValue.ints2D(c.inputs["input_ids"])
            batch = ids2D.count; length = ids2D.first?.count ?? 0
            ids = ids2D.flatMap { $0 }
            mask = c.inputs["attention_mask"].map { JSONValue.ints2D($0).flatMap { $0 } }
            labels = JSONValue.ints2D(c.inputs["labels"]).flatMap { $0 }
        }
    }

    /// The case's base model (config.json + weights named in case.json) and its adapter folder.
    func load(_ c: Case) throws -> (Decoder, URL) {
        let (config, params) = try HFModelFolder.load(c.folder)
        let adapter = (c.json["adapter"] as? [String: Any])?["folder"] as? String ?? "adapter"
        return (try Decoder(config: config, parameters: params), c.file(adapter))
    }

    func checkLoss(_ loss: CausalLMLoss, _ c: Case, _ checker: Checker) {
        checker.check("loss", actual: [Double(loss.loss)], expected: [JSONValue.double(c.expected["loss"])])
    }

    func runLoRA(_ c: Case, _ checker: Checker) throws {
        let (decoder, adapterURL) = try load(c)
        let base = decoder.parameters
        let lora = try LoRAModule(folder: adapterURL, decoder: decoder)
        lora.attach(to: decoder)
        let x = Inputs(c), expected = try c.expectedTensors(), names = Set(c.expectedTensorNames)
        _ = lora.forwardHidden(decoder, ids: x.ids, batch: x.batch, length: x.length, attentionMask: x.mask, positionIds: nil)
        let loss = lora.causalLMLoss(decoder, labels: x.labels, gradientScale: nil)
        if names.contains("logits") { checker.check("logits", actual: lora.logits(decoder), in: expected) }
        checkLoss(loss, c, checker)
        lora.zeroGradients()
        lora.backward(decoder)
        XCTAssert(decoder.gradients.isEmpty, "base weights must get no gradient")
        for name in names.sorted() where name.hasPrefix("grad.") {
            guard let g = lora.gradients[String(name.dropFirst(5))] else { checker.fail("\(name): no gradient"); continue }
            checker.check(name, actual: g, in: expected)
        }
        let merged = try lora.mergedParameters(base, config: decoder.config)
        for name in names.sorted() where name.hasPrefix("merged.") {
            guard let w = merged[String(name.dropFirst(7))] else { checker.fail("\(name): not merged"); continue }
            checker.check(name, actual: w, in: expected)
        }
    }

    func runPromptTuning(_ c: Case, _ checker: Checker) throws {
        try runVirtualTokens(c, checker) { try PromptTuningModule(folder: $1, decoder: $0) }
    }

    func runPrefixTuning(_ c: Case, _ checker: Checker) throws {
        try runVirtualTokens(c, checker) { try PrefixTuningModule(folder: $1, decoder: $0) }
    }

    /// Prompt and prefix tuning: real-token logits (and `logits_full`, every position), loss, table gradient.
    func runVirtualTokens(_ c: Case, _ checker: Checker, make: (Decoder, URL) throws -> PEFTModule) throws {
        let (decoder, adapterURL) = try load(c)
        let module = try make(decoder, adapterURL)
        module.attach(to: decoder)
        let x = Inputs(c), expected = try c.expectedTensors(), names = Set(c.expectedTensorNames)
        _ = module.forwardHidden(decoder, ids: x.ids, batch: x.batch, length: x.length, attentionMask: x.mask, positionIds: nil)
        let loss = module.causalLMLoss(decoder, labels: x.labels, gradientScale: nil)
        if names.contains("logits") { checker.check("logits", actual: module.logits(decoder), in: expected) }
        if names.contains("logits_full") { checker.check("logits_full", actual: decoder.lmHead(), in: expected) }
        checkLoss(loss, c, checker)
        module.zeroGradients()
        module.backward(decoder)
        for name in names.sorted() where name.hasPrefix("grad.") {
            guard let g = module.gradients[String(name.dropFirst(5))] else { checker.fail("\(name): no gradient"); continue }
            checker.check(name, actual: g, in: expected)
        }
    }
}
