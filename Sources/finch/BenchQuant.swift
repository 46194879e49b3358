import ArgumentParser
import Foundation
import FinchGGUF
import FinchKernels

/// `finch bench quant`: the quantised-weight kernels on SmolLM2-135M shapes. Decoding (small m): µs per call
/// and GB/s of weight bytes read (against ~20 GB/s one thread, ~30 GB/s two). Training (m = 2048): forward and
/// input-gradient GFLOP/s against `Gemm.sgemm` on the dequantised Float matrix.
struct BenchQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quant",
        abstract: "Quantised GEMV/GEMM (q8_0, q5_0, q4_0, q4_1, q4_K, q6_K): decode GB/s and training GFLOP/s vs sgemm.",
        discussion: "Example: finch bench quant --formats q4_0,q4_K --threads 1,2 --json")

    @Option(name: .long, help: "Comma-separated formats.")
    var formats: String = QuantFormat.allCases.map(\.rawValue).joined(separator: ",")

    @Option(name: .long, help: "Comma-separated thread counts.")
    var threads: String = "1,2"

    @Option(name: .customLong("decode-rows"), help: "Comma-separated m (x rows) for the decode shapes.")
    var decodeRows: String = "1,8"

    @Option(name: .customLong("train-rows"), help: "m (x rows) for the training shapes; 0 skips them.")
    var trainRows: Int = 2048

    @Option(name: .customLong("fused-max-rows"), help: "Largest m the fused kernels take (QuantGemm.fusedMaxRows; above it the tile path).")
    var fusedMaxRows: Int = QuantGemm.fusedMaxRows

    @Option(name: .customLong("tile-floats"), help: "Floats in one dequantised tile (QuantGemm.tileFloats).")
    var tileFloats: Int = QuantGemm.tileFloats

    @Option(name: .long, help: "Seconds per sample (each sample repeats the call at least this long).")
    var seconds: Double = 0.05

    @Option(name: .long, help: "Samples per case (the median is reported).")
    var samples: Int = 5

    @Flag(name: .customLong("fp32"), inversion: .prefixedNo, help: "Also time sgemm's m = 1 path on the Float matrices (the bandwidth yardstick).")
    var fp32 = true

    @Flag(name: .long, help: "Report the fastest sample instead of the median (on a machine shared with other work).")
    var best = false

    @Flag(name: .customLong("cpu-time"), help: "Time by this process's CPU seconds per thread instead of the wall clock (on a machine shared with other work; spinning pool workers count as busy).")
    var cpuTime = false

    @Flag(name: .long, help: "Print one JSON object instead of the table.")
    var json = false

    struct Row: Codable {
        var format: String, kind: String, shape: String, m: Int, threads: Int
        /// µs per call (median, or fastest with --best).
        var micros: Double
        /// Weight bytes read per second (decode rows) or nil.
        var gbPerSecond: Double?
        /// GFLOP/s (training rows) or nil, and the same product by sgemm on the Float matrix.
        var gflops: Double?, sgemmGflops: Double?
    }

    /// SmolLM2-135M: the MLP down projection [576, 1536] and the tied LM head [49152, 576] (decode);
    /// the up projection [1536, 576] and down projection (training).
    static let decodeShapes = [(rows: 576, cols: 1536), (rows: 49152, cols: 576)]
    static let trainShapes = [(rows: 1536, cols: 576), (rows: 576, cols: 1536)]

    /// `cols` cut to whole blocks: 576 is no multiple of 256, so K formats take 512 there (llama.cpp falls back to
    /// another format for such tensors).
    static func fit(_ cols: Int, _ f: QuantFormat) -> Int { cols / f.blockSize * f.blockSize }

    func run() throws {
        let fmts = try formats.split(separator: ",").map { s -> QuantFormat in
            guard let f = QuantFormat(rawValue: String(s)) else { throw ValidationError("--formats: unknown format '\(s)'") }
            return f
        }
        let ts = list(threads), ms = list(decodeRows)
        guard !ts.isEmpty, samples > 0, seconds > 0 else { throw ValidationError("--threads, --samples and --seconds must be positive") }
        let pool = ThreadPool.shared
        let saved = (pool.threads, QuantGemm.fusedMaxRows, QuantGemm.tileFloats)
        defer { pool.setThreads(saved.0); QuantGemm.fusedMaxRows = saved.1; QuantGemm.tileFloats = saved.2 }
        QuantGemm.fusedMaxRows = fusedMaxRows
        QuantGemm.tileFloats = max(1024, tileFloats)
        var rows: [Row] = []
        func emit(_ r: Row) {
            rows.append(r)
            guard !json else { return }
            let rate = r.gbPerSecond.map { String(format: "%.1f GB/s", $0) }
                ?? String(format: "%.0f GFLOP/s (sgemm %.0f, %.0f%%)", r.gflops!, r.sgemmGflops!, 100 * r.gflops! / r.sgemmGflops!)
            print(pad(r.format, 6) + pad(r.kind, 15) + pad(r.shape, 12) + pad("\(r.m)", 6) + pad("\(r.threads)", 4)
                  + pad(String(format: "%.1f", r.micros), 11) + rate)
            fflush(stdout)
        }
        if !json {
            print("\(best ? "fastest" : "median") of \(samples) samples of ≥\(Int(seconds * 1000)) ms \(cpuTime ? "CPU time per thread" : "wall time"); decode: GB/s of weight bytes read")
            print(pad("format", 6) + pad("kind", 15) + pad("W rows×cols", 12) + pad("m", 6) + pad("t", 4) + pad("µs", 11) + "rate")
        }
        // The bandwidth yardstick under the same conditions: sgemm's matrix–vector path on a Float matrix.
        for s in Self.decodeShapes where fp32 {
            let wf = Tensor(shape: [s.rows * s.cols]), x = Tensor(shape: [s.cols]), y = Tensor(shape: [s.rows])
            for i in 0..<wf.count { wf[i] = Float(i % 7) * 0.01 }
            for t in ts {
                pool.setThreads(t)
                let sec = time { Gemm.sgemm(transA: false, transB: true, m: 1, n: s.rows, k: s.cols, a: x.ptr, lda: s.cols,
                                            b: wf.ptr, ldb: s.cols, beta: 0, c: y.ptr, ldc: s.rows) }
                emit(Row(format: "f32", kind: "sgemm", shape: "\(s.rows)×\(s.cols)", m: 1, threads: t,
                         micros: sec * 1e6, gbPerSecond: Double(wf.count * 4) / sec / 1e9))
            }
        }
        for f in fmts {
            for shape in Self.decodeShapes {
                let s = (rows: shape.rows, cols: Self.fit(shape.cols, f))
                let w = try makeMatrix(f, rows: s.rows, cols: s.cols)
                for m in ms {
                    let x = Tensor(shape: [m * s.cols]), y = Tensor(shape: [m * s.rows])
                    for i in 0..<x.count { x[i] = Float(i % 19) * 0.01 - 0.09 }
                    for t in ts {
                        pool.setThreads(t)
                        let sec = time { QuantGemm.forward(m: m, x: x.ptr, ldx: s.cols, w: w, beta: 0, y: y.ptr, ldy: s.rows) }
                        emit(Row(format: f.rawValue, kind: "forward", shape: "\(s.rows)×\(s.cols)", m: m, threads: t,
                                 micros: sec * 1e6, gbPerSecond: Double(w.byteCount) / sec / 1e9))
                    }
                }
            }
            guard trainRows > 0 else { continue }
            let m = trainRows
            for shape in Self.trainShapes {
                let s = (rows: shape.rows, cols: Self.fit(shape.cols, f))
                let w = try makeMatrix(f, rows: s.rows, cols: s.cols)
                let wf = Tensor(shape: [s.rows * s.cols])
                w.dequantize(rows: 0..<s.rows, cols: 0..<s.cols, into: wf.ptr, ld: s.cols)
                let x = Tensor(shape: [m * s.cols]), y = Tensor(shape: [m * s.rows])
                for i in 0..<x.count { x[i] = Float(i % 19) * 0.01 - 0.09 }
                for i in 0..<y.count { y[i] = Float(i % 23) * 0.01 - 0.11 }
                let flop = 2.0 * Double(m) * Double(s.rows) * Double(s.cols)
                for t in ts {
                    pool.setThreads(t)
                    let q = time { QuantGemm.forward(m: m, x: x.ptr, ldx: s.cols, w: w, beta: 0, y: y.ptr, ldy: s.rows) }
                    let r = time { Gemm.sgemm(transA: false, transB: true, m: m, n: s.rows, k: s.cols, a: x.ptr, lda: s.cols,
                                              b: wf.ptr, ldb: s.cols, beta: 0, c: y.ptr, ldc: s.rows) }
                    emit(Row(format: f.rawValue, kind: "forward", shape: "\(s.rows)×\(s.cols)", m: m, threads: t,
                             micros: q * 1e6, gflops: flop / q / 1e9, sgemmGflops: flop / r / 1e9))
                    let qg = time { QuantGemm.inputGradient(m: m, dy: y.ptr, lddy: s.rows, w: w, beta: 0, dx: x.ptr, lddx: s.cols) }
                    let rg = time { Gemm.sgemm(transA: false, transB: false, m: m, n: s.cols, k: s.rows, a: y.ptr, lda: s.rows,
                                               b: wf.ptr, ldb: s.cols, beta: 0, c: x.ptr, ldc: s.cols) }
                    emit(Row(format: f.rawValue, kind: "inputGradient", shape: "\(s.rows)×\(s.cols)", m: m, threads: t,
                             micros: qg * 1e6, gflops: flop / qg / 1e9, sgemmGflops: flop / rg / 1e9))
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(["quant": rows]), as: UTF8.self))
        }
    }

    /// A `rows × cols` matrix of `format`: 576 distinct quantised rows (ggml's reference quantiser), repeated.
    private func makeMatrix(_ format: QuantFormat, rows: Int, cols: Int) throws -> QuantizedMatrix {
        let distinct = min(rows, 576)
        var v = [Float](repeating: 0, count: distinct * cols)
        var s: UInt64 = 12345
        for i in 0..<v.count {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            v[i] = Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 20_000_000
        }
        let block = try GGMLQuantizer.quantize(GGMLType(name: format.rawValue)!, v)
        var bytes = [UInt8]()
        bytes.reserveCapacity(block.count * (rows + distinct - 1) / distinct)
        let rowBytes = block.count / distinct
        for r in 0..<rows { bytes += block[(r % distinct) * rowBytes ..< (r % distinct + 1) * rowBytes] }
        return try QuantizedMatrix(format: format, rows: rows, cols: cols, bytes: bytes)
    }

    /// Seconds per call, the median (or with `--best`, the fastest) of the samples; each sample repeats `call` for
    /// at least `seconds`.
    private func time(_ call: () -> Void) -> Double {
        call()   // warm-up: tiles, packing buffers, worker threads
        let threads = Double(ThreadPool.shared.threads)
        let clock = cpuTime ? { cpuSeconds() / threads } : nowSeconds
        let perCall = (0..<samples).map { _ -> Double in
            let t0 = clock()
            var reps = 0
            while reps == 0 || clock() - t0 < seconds { call(); reps += 1 }
            return (clock() - t0) / Double(reps)
        }
        return best ? perCall.min()! : median(perCall)
    }

    private func list(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 } }
    private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
}
