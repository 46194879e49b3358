import ArgumentParser
import Foundation
import FinchKernels
import FinchModel
import FinchDistributed

/// `finch bench ranks`: data-parallel scaling on this machine. Run as one process, it starts itself under mpirun with 1
/// and then 2 ranks (one thread each) and prints both beside each other; under mpirun (`--worker`) each rank trains a
/// GPT-2 shape on synthetic rows and rank 0 prints one JSON line: step time with the gradient sum overlapped with the
/// backward and without, and the sum alone.
struct BenchRanks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranks",
        abstract: "Data-parallel scaling: training steps on 1 and 2 ranks (mpirun, one thread each), full gradients summed over TCP.",
        discussion: "Example: finch bench ranks --preset small --steps 5")

    @Option(help: "Model shape: gpt2-124m or small.") var preset: BenchPreset = .small
    @Option(help: "Timed steps after one warm-up step.") var steps: Int = 5
    @Option(help: "Rows per rank per step.") var batch: Int = 4
    @Option(help: "Sequence length.") var length: Int = 64
    @Option(help: "Largest number of ranks (each run has one thread per rank).") var maxRanks: Int = 2
    @Option(help: "All-reduce bucket size in MiB.") var bucketMb: Double = 4
    @Flag(help: "Internal: the measuring process, started by mpirun.") var worker = false

    func run() throws {
        if worker { return try measure() }
        guard let mpirun = Self.mpirun() else {
            throw ValidationError("finch bench ranks needs Open MPI's mpirun (apt-get install openmpi-bin libopenmpi-dev, or tools/setup.sh)")
        }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let flags = (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"]
        print("preset \(preset.rawValue), \(batch)×\(length) tokens per rank per step, 1 thread per rank, gradients summed over TCP on loopback")
        print("ranks  step ms  tokens/s  speed-up  no-overlap ms  all-reduce ms  MB sent/step")
        var base: Double? = nil
        for n in 1...max(1, maxRanks) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: mpirun)
            p.arguments = flags + ["-np", "\(n)", me, "bench", "ranks", "--worker", "--preset", preset.rawValue, "--steps", "\(steps)",
                                   "--batch", "\(batch)", "--length", "\(length)", "--bucket-mb", "\(bucketMb)"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
                  let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double] else {
                throw ValidationError("mpirun -np \(n) finch bench ranks --worker failed (status \(p.terminationStatus))")
            }
            let tps = obj["tokens_per_s"]!
            if base == nil { base = tps }
            print(String(format: "%5d  %7.1f  %8.0f  %7.2fx  %13.1f  %13.1f  %12.1f", n, obj["ms_overlap"]!, tps, tps / base!,
                         obj["ms_no_overlap"]!, obj["ms_allreduce"]!, obj["bytes"]! / 1e6))
        }
    }

    static func mpirun() -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// One rank's measurement (every rank runs it; rank 0 prints).
    func measure() throws {
        ThreadPool.shared.setThreads(1)
        let world = World.current
        let d = Decoder(config: preset.config, seed: 1)
        d.allocateGradients()
        var rng = SeededRNG(seed: 2 &+ UInt64(world.rank))
        let ids = (0..<(batch * length)).map { _ in Int(rng.next() % 50257) }
        let names = d.parameters.keys.sorted()
        let m = names.map { Tensor(shape: d.parameters[$0]!.shape) }, v = names.map { Tensor(shape: d.parameters[$0]!.shape) }
        let hyper = AdamW.Hyper(lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0)
        let reducer = GradientReducer(communicator: world, gradients: d.gradients, layer: GradientReducer.layerIndex(of:),
                                      bucketBytes: Int(bucketMb * 1_048_576))
        var hookError: Error? = nil
        func step(_ s: Int, overlap: Bool) throws -> Double {
            try world.barrier(what: "bench step start")
            let t0 = nowSeconds()
            d.zeroGradients()
            d.forwardHidden(ids: ids, batch: batch, length: length)
            _ = d.trainedTokenLoss(labels: ids)
            if overlap { d.afterLayerBackward = { l in do { try reducer.layerDone(l) } catch { hookError = error } } }
            d.backward()
            d.afterLayerBackward = nil
            if let e = hookError { throw e }
            try reducer.finish()
            for (i, name) in names.enumerated() {
                AdamW.step(param: d.parameters[name]!, grad: d.gradients[name]!, m: m[i], v: v[i], hyper: hyper, step: s + 1)
            }
            return nowSeconds() - t0
        }
        var withOverlap: [Double] = [], without: [Double] = [], sumOnly: [Double] = []
        for s in 0...steps {
            // Alternate the two kinds so load on the machine affects both alike.
            let a = try step(2 * s, overlap: true), b = try step(2 * s + 1, overlap: false)
            try world.barrier(what: "bench all-reduce start")
            let t0 = nowSeconds()
            try reducer.finish()
            let c = nowSeconds() - t0
            if s > 0 { withOverlap.append(a); without.append(b); sumOnly.append(c) }
        }
        guard world.isWriter else { return }
        let ms = median(withOverlap) * 1000
        let result: [String: Double] = [
            "ranks": Double(world.size), "ms_overlap": ms, "ms_no_overlap": median(without) * 1000,
            "ms_allreduce": median(sumOnly) * 1000, "bytes": Double(world.size > 1 ? reducer.bytesPerStep : 0),
            "tokens_per_s": Double(batch * length * world.size) / (ms / 1000),
        ]
        let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
