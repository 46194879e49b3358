import XCTest
import Foundation
import FinchKernels
import FinchModel
import FinchConformance

/// `llama-lora`, `llama-prompt-tuning`, `llama-prefix-tuning`: PEFT methods against PEFT's own numbers.
/// Shapes and settings come from each case's case.json, config.json and adapter/adapter_config.json.
final class PEFTConformanceTests: XCTestCase {
    func testLoRA() throws { try Conformance.run(kind: "llama-lora", runLoRA) }
    func testPromptTuning() throws { try Conformance.run(kind: "llama-prompt-tuning", runPromptTuning) }
    func testPrefixTuning() throws { try Conformance.run(kind: "llama-prefix-tuning", runPrefixTuning) }
    /// LoRA with the base projections, the LoRA products and the head in bf16 (`bf16Tolerance`).
    func testLoRABF16() throws {
        try requireBF16()
        try Conformance.run(kind: "llama-lora", scaleTolerance: bf16Tolerance) { try runLoRA($0, $1, precision: .bf16) }
    }

    struct Inputs {
        let ids: [Int], mask: [Int]?, labels: [Int], batch: Int, length: Int
        init(_ c: Case) throws {
            let ids2D = try c.inputs.required("input_ids", \.intRows)
            batch = ids2D.count; length = ids2D.first?.count ?? 0
            ids = ids2D.flatMap { $0 }
            mask = try c.inputs.optional("attention_mask", \.intRows)?.flatMap { $0 }
            labels = try c.inputs.required("labels", \.intRows).flatMap { $0 }
        }
    }

    /// The case's base model (config.json + weights named in case.json) and its adapter folder.
    func load(_ c: Case) throws -> (Decoder, URL) {
        let (config, params) = try HFModelFolder.load(c.folder)
        let adapter = c.json["adapter"]?["folder"]?.string ?? "adapter"
        return (try Decoder(config: config, parameters: params), c.file(adapter))
    }

    func checkLoss(_ loss: CausalLMLoss, _ c: Case, _ checker: Checker) throws {
        checker.check("loss", actual: [Double(loss.loss)], expected: [try c.expected.required("loss", \.double)])
    }

    func runLoRA(_ c: Case, _ checker: Checker) throws { try runLoRA(c, checker, precision: .fp32) }

    func runLoRA(_ c: Case, _ checker: Checker, precision: GemmPrecision) throws {
        let (decoder, adapterURL) = try load(c)
        decoder.precision = precision
        let base = decoder.parameters
        let lora = try LoRAModule(folder: adapterURL, decoder: decoder)
        lora.attach(to: decoder)
        let x = try Inputs(c), expected = try c.expectedTensors(), names = Set(c.expectedTensorNames)
        _ = lora.forwardHidden(decoder, ids: x.ids, batch: x.batch, length: x.length, attentionMask: x.mask, positionIds: nil)
        let loss = lora.causalLMLoss(decoder, labels: x.labels, gradientScale: nil)
        if names.contains("logits") { checker.check("logits", actual: lora.logits(decoder), in: expected) }
        try checkLoss(loss, c, checker)
        lora.zeroGradients()
        lora.backward(decoder)
        if !decoder.gradients.isEmpty { checker.fail("base weights must get no gradient (got \(decoder.gradients.keys.sorted()))") }
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
        let x = try Inputs(c), expected = try c.expectedTensors(), names = Set(c.expectedTensorNames)
        _ = module.forwardHidden(decoder, ids: x.ids, batch: x.batch, length: x.length, attentionMask: x.mask, positionIds: nil)
        let loss = module.causalLMLoss(decoder, labels: x.labels, gradientScale: nil)
        if names.contains("logits") { checker.check("logits", actual: module.logits(decoder), in: expected) }
        if names.contains("logits_full") { checker.check("logits_full", actual: decoder.lmHead(), in: expected) }
        try checkLoss(loss, c, checker)
        module.zeroGradients()
        module.backward(decoder)
        for name in names.sorted() where name.hasPrefix("grad.") {
            guard let g = module.gradients[String(name.dropFirst(5))] else { checker.fail("\(name): no gradient"); continue }
            checker.check(name, actual: g, in: expected)
        }
    }
}
