import ArgumentParser
import Foundation
import FinchKernels
import FinchModel

/// `finch bench lora`: one LoRA training step (forward, loss on every position, backward, AdamW on the adapter)
/// on a real model, as `../shared/bench/torch_lora_bench.py` measures PyTorch + PEFT: all-linear targets,
/// rank r, α = 2r, no dropout, a random token batch that is its own label.
struct BenchLoRA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lora",
        abstract: "LoRA training-step speed and peak memory on a model (as torch_lora_bench.py measures PyTorch + PEFT).",
        discussion: """
        Example: finch bench lora --model SmolLM2-135M-Instruct.Q4_1.gguf --rank 16 --batch 2 --length 1024 --json
        Run it beside the reference in one session (tools/bench_lora.sh does both and prints the ratios).
        """)

    @Option(help: "Model: a Hugging Face folder or a .gguf file.") var model: String
    @Option(help: "LoRA rank (α = 2 × rank, as the reference).") var rank: Int = 16
    @Option(help: "Sequences per step.") var batch: Int = 2
    @Option(help: "Tokens per sequence.") var length: Int = 1024
    @Option(help: "Timed steps after the warm-up.") var steps: Int = 3
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 1
    @Option(help: "Worker threads (default: the pool's).") var threads: Int?
    @Option(help: "Hold the frozen base as q8_0, q5_0, q4_0, q4_1, q4_K or q6_K blocks (default: fp32).") var baseQuant: String?
    @Option(help: "Matrix-product arithmetic: fp32 or bf16.") var precision: Precision = .fp32
    @Flag(help: "Gradient checkpointing: recompute each layer in the backward.") var gradientCheckpointing = false
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func validate() throws {
        guard rank >= 1, batch >= 1, length >= 2, steps >= 1, warmup >= 0 else {
            throw ValidationError("--rank, --batch, --steps must be positive and --length at least 2")
        }
        if let q = baseQuant, QuantFormat(rawValue: q) == nil {
            throw ValidationError("--base-quant: '\(q)' is not one of \(Decoder.baseQuantFormats.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if let t = threads { ThreadPool.shared.setThreads(t) }
        let loadStart = nowSeconds()
        let folder = try HFModelFolder.read(URL(fileURLWithPath: model))
        let decoder = try Decoder(config: folder.config, parameters: folder.parameters)
        let cfg = LoRAAdapterConfig(r: rank, loraAlpha: Double(2 * rank), loraDropout: 0, targetModules: ["all-linear"])
        let lora = try LoRAModule(config: cfg, decoder: decoder, seed: 0)
        lora.attach(to: decoder)
        decoder.precision = precision.gemm
        decoder.recomputeActivations = gradientCheckpointing
        if let q = baseQuant.flatMap(QuantFormat.init(rawValue:)) { try decoder.quantizeFrozenBase(q) }
        let loadSeconds = nowSeconds() - loadStart

        var rng = SeededRNG(seed: 0)
        let V = folder.config.vocabSize, N = batch * length
        let names = lora.parameters.keys.sorted()
        let m = names.map { Tensor(shape: lora.parameters[$0]!.shape) }, v = names.map { Tensor(shape: lora.parameters[$0]!.shape) }
        let hyper = AdamW.Hyper(lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01)
        var times: [Double] = [], loss: Float = 0
        for s in 0..<(warmup + steps) {
            let ids = (0..<N).map { _ in Int(rng.next() % UInt64(V)) }
            let t0 = nowSeconds()
            lora.zeroGradients()
            _ = lora.forwardHidden(decoder, ids: ids, batch: batch, length: length, attentionMask: nil, positionIds: nil)
            loss = lora.causalLMLoss(decoder, labels: ids, gradientScale: nil).loss
            lora.backward(decoder)
            for (i, name) in names.enumerated() {
                AdamW.step(param: lora.parameters[name]!, grad: lora.gradients[name]!, m: m[i], v: v[i], hyper: hyper, step: s + 1)
            }
            if s >= warmup { times.append(nowSeconds() - t0) }
        }
        let seconds = median(times), tokens = Double(N) / seconds, rss = peakRSSMiB()
        let trainable = lora.parameters.values.reduce(0) { $0 + $1.count }
        if json {
            let obj: [String: Any] = [
                "model": model, "rank": rank, "batch": batch, "length": length, "threads": ThreadPool.shared.threads,
                "base_quant": baseQuant ?? "fp32", "precision": precision.rawValue, "gradient_checkpointing": gradientCheckpointing, "steps": steps, "s_per_step": seconds, "tokens_per_s": tokens,
                "peak_rss_mib": rss, "loss": Double(loss), "trainable_parameters": trainable,
                "weight_mib": Double(decoder.weightBytes) / 1048576, "load_s": loadSeconds,
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("LoRA r=\(rank) all-linear, \(batch) × \(length) tokens, base \(baseQuant ?? "fp32"), \(precision.rawValue) products, \(ThreadPool.shared.threads) threads, median of \(steps) steps")
        print(String(format: "  s/step       %8.2f", seconds))
        print(String(format: "  tokens/s     %8.1f", tokens))
        print(String(format: "  peak RSS MiB %8.0f   (weights %.0f MiB)", rss, Double(decoder.weightBytes) / 1048576))
        print(String(format: "  loss         %8.4f", loss))
    }
}
