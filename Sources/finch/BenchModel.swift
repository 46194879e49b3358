import ArgumentParser
import Foundation
import FinchKernels
import FinchModel

/// The two GPT-2 shapes of `../shared/bench/README.md` (vocabulary padded to 50304, context 1024, tied).
enum BenchPreset: String, ExpressibleByArgument, CaseIterable {
    case gpt2_124m = "gpt2-124m", small

    var config: DecoderConfig {
        switch self {
        case .gpt2_124m: return DecoderConfig(flavour: .gpt2, vocabSize: 50304, hiddenSize: 768, numLayers: 12, numHeads: 12, maxPositions: 1024)
        case .small: return DecoderConfig(flavour: .gpt2, vocabSize: 50304, hiddenSize: 384, numLayers: 6, numHeads: 6, maxPositions: 1024)
        }
    }
    /// Reference ms/step at 2 threads (llm.c train_gpt2, PyTorch eager) and PyTorch tg128 tok/s.
    var reference: (llmc: Double, torch: Double, torchDecode: Double, torchPrefill: Double) {
        switch self {
        case .gpt2_124m: return (5191, 2235, 23.3, 479)
        case .small: return (1390, 661, 66.0, 2376)
        }
    }
}

func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024   // KiB on Linux
}

func nowSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// User + system CPU seconds of this process (on a shared machine, wall time alone overstates a step).
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? .nan : s[s.count / 2] }

/// `finch bench train`: a full training step (forward, loss, zero-grad, backward, AdamW) at B=4, T=64.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training-step speed at batch 4 × 64 tokens (as llm.c's CPU trainer), vs llm.c and PyTorch.",
        discussion: "Example: finch bench train --preset small --threads 2 --steps 5")

    @Option(help: "Model shape: gpt2-124m or small.") var preset: BenchPreset = .small
    @Option(help: "Worker threads (default: the pool's).") var threads: Int?
    @Option(help: "Timed steps after one warm-up step.") var steps: Int = 5
    @Option(help: "Batch size.") var batch: Int = 4
    @Option(help: "Sequence length.") var length: Int = 64
    @Option(help: "Matrix-product arithmetic: fp32 or bf16.") var precision: Precision = .fp32
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        if let t = threads { ThreadPool.shared.setThreads(t) }
        let cfg = preset.config
        let d = Decoder(config: cfg, seed: 1)
        d.precision = precision.gemm
        d.allocateGradients()
        var rng = SeededRNG(seed: 2)
        let N = batch * length
        let ids = (0..<N).map { _ in Int(rng.next() % 50257) }
        let labels = ids
        let names = d.parameters.keys.sorted()
        let m = names.map { Tensor(shape: d.parameters[$0]!.shape) }, v = names.map { Tensor(shape: d.parameters[$0]!.shape) }
        let hyper = AdamW.Hyper(lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0)
        var times: [Double] = [], phases: [String: [Double]] = [:], loss: Float = 0
        var cpuStart = 0.0
        for s in 0...steps {
            if s == 1 { cpuStart = cpuSeconds() }
            let t0 = nowSeconds()
            d.zeroGradients()   // the trained-token loss accumulates the head's gradient chunk by chunk
            d.forwardHidden(ids: ids, batch: batch, length: length)
            loss = d.trainedTokenLoss(labels: labels).loss
            let t1 = nowSeconds()
            d.backward()
            let t2 = nowSeconds()
            for (i, name) in names.enumerated() {
                AdamW.step(param: d.parameters[name]!, grad: d.gradients[name]!, m: m[i], v: v[i], hyper: hyper, step: s + 1)
            }
            let t3 = nowSeconds()
            if s > 0 {
                times.append(t3 - t0)
                phases["forward", default: []].append(t1 - t0)
                phases["backward", default: []].append(t2 - t1)
                phases["adamw", default: []].append(t3 - t2)
            }
        }
        let ms = median(times) * 1000
        let cpuMs = (cpuSeconds() - cpuStart) / Double(max(steps, 1)) * 1000
        let tokens = Double(N) / (ms / 1000)
        let ref = preset.reference
        let rss = peakRSSMiB()
        if json {
            var obj: [String: Any] = [
                "preset": preset.rawValue, "threads": ThreadPool.shared.threads, "batch": batch, "length": length,
                "precision": precision.rawValue, "steps": steps, "ms_per_step": ms, "cpu_ms_per_step": cpuMs, "tokens_per_s": tokens, "peak_rss_mib": rss, "loss": Double(loss),
                "forward_ms": median(phases["forward"]!) * 1000, "backward_ms": median(phases["backward"]!) * 1000,
                "adamw_ms": median(phases["adamw"]!) * 1000,
            ]
            // The references were measured at 4 × 64 only: a ratio at another shape would compare unlike things.
            if batch == 4 && length == 64 {
                for (k, v) in ["llmc_ms_2t": ref.llmc, "pytorch_ms_2t": ref.torch, "speedup_vs_llmc": ref.llmc / ms,
                               "speedup_vs_pytorch": ref.torch / ms] { obj[k] = v }
            }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("training step \(preset.rawValue), B=\(batch) T=\(length), \(ThreadPool.shared.threads) threads, median of \(steps) steps")
        print(String(format: "  ms/step      %8.1f   (forward %.1f, backward %.1f, AdamW %.1f)", ms,
                     median(phases["forward"]!) * 1000, median(phases["backward"]!) * 1000, median(phases["adamw"]!) * 1000))
        print(String(format: "  CPU ms/step  %8.1f   (user+system over all threads)", cpuMs))
        print(String(format: "  tokens/s     %8.1f", tokens))
        print(String(format: "  peak RSS MiB %8.0f", rss))
        print(String(format: "  loss         %8.4f", loss))
        guard batch == 4 && length == 64 else {
            print("  (references exist for 4 × 64 only; run ../shared/bench/torch_train_bench.py at this shape beside it)")
            return
        }
        print(String(format: "  vs llm.c 2t    %.0f ms → %.2f× faster", ref.llmc, ref.llmc / ms))
        print(String(format: "  vs PyTorch 2t  %.0f ms → %.2f× faster", ref.torch, ref.torch / ms))
    }
}

/// The arithmetic of a benchmark's matrix products.
enum Precision: String, ExpressibleByArgument, CaseIterable {
    case fp32, bf16
    var gemm: GemmPrecision { self == .bf16 ? .bf16 : .fp32 }
}

/// `finch bench decode`: batch-1 prefill (pp64) and greedy decode (tg128) tokens/s with the KV cache.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Batch-1 prefill and greedy KV-cached decode tokens/s: a random GPT-2 preset (vs PyTorch) or a real model.",
        discussion: """
        Examples: finch bench decode --preset gpt2-124m
                  finch bench decode --model SmolLM2-135M-Instruct.Q4_1.gguf --prefill 512 --generate 128 --json
        A GGUF model decodes from its own quantised blocks where the kernels take the type (q8_0, q4_0, q4_1,
        q4_K, q6_K); --base-quant holds any model's projections in one of those formats instead.
        """)

    @Option(help: "Model shape: gpt2-124m or small.") var preset: BenchPreset = .small
    @Option(help: "A real model (Hugging Face folder or .gguf) instead of a preset.") var model: String?
    @Option(help: "Hold the projections as q8_0, q5_0, q4_0, q4_1, q4_K or q6_K blocks (with --model).") var baseQuant: String?
    @Option(help: "Worker threads (default: the pool's).") var threads: Int?
    @Option(help: "Repetitions (the median is reported).") var repetitions: Int = 3
    @Option(help: "Prompt tokens of the prefill test.") var prefill: Int = 64
    @Option(help: "Tokens generated in the decode test.") var generate: Int = 128
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        if let t = threads { ThreadPool.shared.setThreads(t) }
        let d: Decoder
        if let path = model {
            let folder = try HFModelFolder.read(URL(fileURLWithPath: path), keepQuantized: baseQuant == nil)
            d = try Decoder(config: folder.config, parameters: folder.parameters, quantized: folder.quantized)
            d.trainable = []   // inference: the compact head copy is used only while the head is frozen
            let types = Set(folder.storedDTypes.map { $0.lowercased() })
            if baseQuant == nil, types.contains("bf16") {
                try d.holdFrozenBaseBF16()   // a bf16 file decodes from bf16 weights, as llama.cpp does
            } else if baseQuant == nil, types.contains("f16") {
                try d.holdFrozenBaseF16()    // and an f16 file from f16 weights
            }
            if let q = baseQuant {
                guard let f = QuantFormat(rawValue: q) else { throw ValidationError("--base-quant: unknown format '\(q)'") }
                d.trainable = []
                try d.quantizeFrozenBase(f)
            }
        } else {
            d = Decoder(config: preset.config, seed: 1)
        }
        let cfg = d.config
        var rng = SeededRNG(seed: 3)
        let prompt = (0..<prefill).map { _ in Int(rng.next() % UInt64(min(cfg.vocabSize, 50257))) }
        let cache = KVCache(config: cfg, batch: 1, maxLength: max(prefill, generate) + 1)
        d.prefill(prompt, cache: cache)   // warm-up
        var pp: [Double] = [], tg: [Double] = [], tgCPU: [Double] = []
        for _ in 0..<repetitions {
            cache.reset()
            let t0 = nowSeconds()
            d.prefill(prompt, cache: cache)
            pp.append(Double(prefill) / (nowSeconds() - t0))
            cache.reset()
            var token = min(50256, cfg.vocabSize - 1)
            let t1 = nowSeconds(), c1 = cpuSeconds()
            for _ in 0..<generate {   // from an empty context, argmax fed back
                let logits = d.step([token], cache: cache)
                var best = 0
                for i in 1..<cfg.vocabSize where logits[i] > logits[best] { best = i }
                token = best
            }
            tg.append(Double(generate) / (nowSeconds() - t1))
            tgCPU.append(Double(generate) / (cpuSeconds() - c1))
        }
        let ppv = median(pp), tgv = median(tg)
        if let path = model {
            let weights = !d.bf16Weights.isEmpty ? "bf16" : !d.f16Weights.isEmpty ? "f16" : d.quantized.isEmpty ? "fp32"
                : Set(d.quantized.values.map(\.format.rawValue)).sorted().joined(separator: "+")
            let obj: [String: Any] = [
                "model": path, "weights": weights, "threads": ThreadPool.shared.threads, "prefill_tokens": prefill,
                "generate_tokens": generate, "pp_tokens_per_s": ppv, "tg_tokens_per_s": tgv, "tg_tokens_per_cpu_s": median(tgCPU),
                "weight_mib": Double(d.weightBytes) / 1048576, "peak_rss_mib": peakRSSMiB(),
            ]
            if json {
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("batch-1 decoding \(path) (\(weights) projections), \(ThreadPool.shared.threads) threads, median of \(repetitions)")
                print(String(format: "  prefill pp%d  %8.1f tok/s", prefill, ppv))
                print(String(format: "  decode tg%d  %8.1f tok/s", generate, tgv))
                print(String(format: "  weights %.0f MiB, peak RSS %.0f MiB", Double(d.weightBytes) / 1048576, peakRSSMiB()))
            }
            return
        }
        let ref = preset.reference
        if json {
            let obj: [String: Any] = [
                "preset": preset.rawValue, "threads": ThreadPool.shared.threads, "prefill_tokens": prefill,
                "generate_tokens": generate, "pp_tokens_per_s": ppv, "tg_tokens_per_s": tgv, "tg_tokens_per_cpu_s": median(tgCPU),
                "pytorch_pp64_2t": ref.torchPrefill, "pytorch_tg128_2t": ref.torchDecode,
                "tg_ratio_vs_pytorch": tgv / ref.torchDecode, "peak_rss_mib": peakRSSMiB(),
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("batch-1 decoding \(preset.rawValue), \(ThreadPool.shared.threads) threads, median of \(repetitions)")
        print(String(format: "  prefill pp%d  %8.1f tok/s   (PyTorch 2t %.0f → %.2f×)", prefill, ppv, ref.torchPrefill, ppv / ref.torchPrefill))
        print(String(format: "  decode tg%d  %8.1f tok/s   (PyTorch 2t %.1f → %.2f×)", generate, tgv, ref.torchDecode, tgv / ref.torchDecode))
        print(String(format: "  decode per CPU-second %8.1f tok   (user+system over all threads)", median(tgCPU)))
        print(String(format: "  peak RSS MiB  %8.0f", peakRSSMiB()))
    }
}
