import XCTest
import FinchKernels
import FinchModel
import FinchConformance

/// `llama-generate`: greedy decoding with the KV cache; generated ids exact, prefill and step logits.
final class GenerateConformanceTests: XCTestCase {
    func testLlamaGenerate() throws { try Conformance.run(kind: "llama-generate", run) }

    func run(_ c: Case, _ checker: Checker) throws {
        let decoder = try loadCaseDecoder(c)
        let prompt = try c.inputs.required("prompt_ids", \.ints)
        let n = try c.inputs.required("max_new_tokens", \.int)
        let expectedIds = try c.expected.required("generated_ids", \.ints)
        let expected = try c.expectedTensors()
        let V = decoder.config.vocabSize

        // Step by step, to compare the logits of every step.
        let cache = KVCache(config: decoder.config, batch: 1, maxLength: prompt.count + n)
        let prefillLogits = decoder.prefill(prompt, cache: cache, allPositions: true)
        checker.check("prefill_logits", actual: Tensor(shape: [prompt.count, V], values: prefillLogits.array), in: expected)
        var stepLogits = Array(prefillLogits.array[((prompt.count - 1) * V)...])
        var ids: [Int] = []
        var last = stepLogits
        for s in 0..<n {
            let next = last.indices.max { last[$0] < last[$1] || (last[$0] == last[$1] && $0 > $1) }!
            ids.append(next)
            if s + 1 < n { last = decoder.step([next], cache: cache).array; stepLogits += last }
        }
        checker.check("step_logits", actual: Tensor(shape: [n, V], values: stepLogits), in: expected)
        checker.checkExact("generated_ids (step loop)", actual: ids, expected: expectedIds)

        // The public generate API, greedy, gives the same ids.
        let result = decoder.generate(prompt: prompt, options: GenerationOptions(maxNewTokens: n))
        checker.checkExact("generated_ids", actual: result.tokens, expected: expectedIds)
    }
}
