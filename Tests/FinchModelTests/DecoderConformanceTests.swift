import XCTest
import FinchKernels
import FinchModel
import FinchConformance

/// Loads a case folder (`config.json` + `model.safetensors`) into a `Decoder` through the HF import.
func loadCaseDecoder(_ c: Case) throws -> Decoder {
    let (config, params) = try HFModelFolder.load(c.folder)
    return try Decoder(config: config, parameters: params)
}

/// bf16 conformance tolerances, relative to each tensor's largest expected magnitude: a bf16 operand carries a
/// relative rounding error of up to 2⁻⁹ (≈ 0.2%), so one product is off by up to ≈ 0.4% of |a||b|; through a few layers,
/// a norm and a softmax that grows to ≈ 1% of a tensor's scale. Forward values (logits, activations, loss, NLLs) are
/// held to 2% of their scale, gradients (one more pass of rounded products, and small values) to 5%.
let bf16Tolerance = (forward: 0.02, gradient: 0.05)

/// Skips a bf16 test on a CPU without AVX512-BF16, where `.bf16` runs the fp32 path (nothing to check).
func requireBF16() throws {
    guard Gemm.bf16Available else { throw XCTSkip("this CPU has no AVX512-BF16: bf16 matmuls run in fp32 here") }
}

/// `llama-forward-backward` and `gpt2-forward-backward`: logits, loss, token NLL, debug activations,
/// and the gradient of every parameter, on the padded batch of each case.
final class DecoderConformanceTests: XCTestCase {
    func testLlamaForwardBackward() throws { try Conformance.run(kind: "llama-forward-backward", run) }
    func testGPT2ForwardBackward() throws { try Conformance.run(kind: "gpt2-forward-backward", run) }

    /// The same cases with every projection and the LM head multiplied in bf16 (`Decoder.precision = .bf16`: operands
    /// rounded to bf16, fp32 accumulation; norms, attention, softmax and the loss in fp32), held to the bf16
    /// tolerances `bf16Tolerance` states.
    func testLlamaForwardBackwardBF16() throws {
        try requireBF16()
        try Conformance.run(kind: "llama-forward-backward", scaleTolerance: bf16Tolerance) { try run($0, $1, precision: .bf16) }
    }
    func testGPT2ForwardBackwardBF16() throws {
        try requireBF16()
        try Conformance.run(kind: "gpt2-forward-backward", scaleTolerance: bf16Tolerance) { try run($0, $1, precision: .bf16) }
    }

    func run(_ c: Case, _ checker: Checker) throws { try run(c, checker, precision: .fp32) }

    func run(_ c: Case, _ checker: Checker, precision: GemmPrecision) throws {
        let decoder = try loadCaseDecoder(c)
        decoder.precision = precision
        let ids2D = try c.inputs.required("input_ids", \.intRows)
        let B = ids2D.count, T = ids2D.first?.count ?? 0
        let mask = try c.inputs.optional("attention_mask", \.intRows)?.flatMap { $0 }
        let positions = try c.inputs.optional("position_ids", \.intRows)?.flatMap { $0 }
        let labels = try c.inputs.required("labels", \.intRows).flatMap { $0 }
        let expected = try c.expectedTensors()

        decoder.forwardHidden(ids: ids2D.flatMap { $0 }, batch: B, length: T, attentionMask: mask, positionIds: positions)
        let logits = decoder.lmHead()
        let names = Set(c.expectedTensorNames)
        if names.contains("logits") { checker.check("logits", actual: logits, in: expected) }
        for name in names where name.hasPrefix("debug.") {
            guard let a = decoder.activation(String(name.dropFirst(6))) else { checker.fail("\(name): not produced"); continue }
            checker.check(name, actual: a, in: expected)
        }
        let loss = decoder.causalLMLoss(labels: labels)
        checker.check("loss", actual: [Double(loss.loss)], expected: [try c.expected.required("loss", \.double)])
        if let n = try c.expected.optional("num_loss_tokens", \.int) { checker.checkExact("num_loss_tokens", actual: [loss.count], expected: [n]) }
        if names.contains("token_nll") {
            checker.check("token_nll", actual: Tensor(shape: [B, T - 1], values: loss.tokenNLL), in: expected)
        }
        decoder.backward()
        for name in names.sorted() where name.hasPrefix("grad.") {
            guard let g = decoder.gradients[String(name.dropFirst(5))] else { checker.fail("\(name): no gradient"); continue }
            checker.check(name, actual: g, in: expected)
        }
    }
}
