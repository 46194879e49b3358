import ArgumentParser
import Foundation
import FinchKernels

/// `finch bench gemm`: GEMM GFLOP/s for the shapes of `../shared/bench/README.md`, at 1 and 2 threads: fp32
/// next to the OpenBLAS figures measured there, bf16 (`--precision bf16`) as a fraction of the vdpbf16ps peak.
struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GEMM GFLOP/s (median of ~50 ms samples) for the reference shapes: fp32 vs OpenBLAS, bf16 vs peak.")

    @Option(name: .long, help: "fp32 (compared with OpenBLAS SGEMM) or bf16 (compared with the vdpbf16ps peak).")
    var precision: String = "fp32"

    @Option(name: .long, help: "Comma-separated thread counts.")
    var threads: String = "1,2"

    @Option(name: .long, help: "Seconds per sample (each sample repeats the call at least this long).")
    var seconds: Double = 0.05

    @Option(name: .long, help: "Samples per shape and layout (the median is reported).")
    var samples: Int = 7

    @Flag(name: .long, help: "Print one JSON object instead of the table.")
    var json = false

    @Flag(name: .customLong("result-lines"), help: "Also print RESULT lines in the bench harness format.")
    var resultLines = false

    /// OpenBLAS 0.3.21 `cblas_sgemm` medians (GFLOP/s), 1 and 2 threads, from the SGEMM table of
    /// /work/shared/bench/README.md ("Performance anchors", measured 2026-11-22 on this machine type).
    static let openBLASReference: [String: (t1: Double, t2: Double)] = [
        "512x768x768/NN": (105, 202), "512x768x768/NT": (105, 204), "512x768x768/TN": (105, 199),
        "512x3072x768/NN": (103, 189), "512x3072x768/NT": (101, 201), "512x3072x768/TN": (103, 199),
        "512x768x3072/NN": (103, 197), "512x768x3072/NT": (99.7, 197), "512x768x3072/TN": (102, 203),
        "2048x2048x2048/NN": (104, 204), "2048x2048x2048/NT": (104, 199), "2048x2048x2048/TN": (104, 198),
        "256x256x256/NN": (104, 187), "256x256x256/NT": (102, 180), "256x256x256/TN": (104, 182),
        "64x4096x256/NN": (92.7, 176), "64x4096x256/NT": (88.9, 173), "64x4096x256/TN": (93.4, 181),
    ]
    /// vdpbf16ps zmm peak (GFLOP/s), 1 and 2 threads: "Peak arithmetic rate" in the same README.
    static let bf16Peak: [Int: Double] = [1: 234, 2: 461]
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (512, 768, 768), (512, 3072, 768), (512, 768, 3072), (2048, 2048, 2048), (256, 256, 256), (64, 4096, 256),
    ]
    static let layouts = ["NN", "NT", "TN"]

    struct Row: Codable {
        var shape: String, layout: String, threads: Int
        var median: Double, min: Double, max: Double
        var openblas: Double?, ratio: Double?
        /// bf16 only: median / vdpbf16ps peak at this thread count.
        var peakFraction: Double?
    }

    func validate() throws {
        guard parsedThreads.count > 0 else { throw ValidationError("--threads: expected a list like 1,2, got '\(threads)'") }
        guard seconds > 0, samples > 0 else { throw ValidationError("--seconds and --samples must be positive") }
        guard gemmPrecision != nil else { throw ValidationError("--precision: expected fp32 or bf16, got '\(precision)'") }
    }

    var gemmPrecision: GemmPrecision? { precision == "fp32" ? .fp32 : (precision == "bf16" ? .bf16 : nil) }

    var parsedThreads: [Int] { threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 } }

    func run() throws {
        let pool = ThreadPool.shared
        let saved = pool.threads
        defer { pool.setThreads(saved) }
        var rows: [Row] = []
        let bf16 = gemmPrecision == .bf16
        if bf16 && !Gemm.bf16Available { print("note: this CPU has no AVX512-BF16; bf16 runs the fp32 path") }
        if !json {
            let what = bf16 ? "bf16 GEMM (fp32 accumulation)" : "SGEMM"
            let ref = bf16 ? "peak: vdpbf16ps" : "OpenBLAS"
            print("\(what) GFLOP/s, median of \(samples) samples of ≥\(Int(seconds * 1000)) ms (\(ref), bench/README.md)")
            print(pad("M×N×K", 16) + pad("layout", 8) + pad("threads", 9) + pad("ours", 9) + pad("min–max", 14)
                  + (bf16 ? pad("peak", 10) + "of peak" : pad("OpenBLAS", 10) + "ratio"))
        }
        for t in parsedThreads {
            pool.setThreads(t)
            for s in Self.shapes {
                for layout in Self.layouts {
                    let row = measure(s.m, s.n, s.k, layout: layout, threads: t)
                    rows.append(row)
                    if !json {
                        let ref = (bf16 ? Self.bf16Peak[t] : row.openblas).map { fmt($0) } ?? "-"
                        let ratio = (bf16 ? row.peakFraction : row.ratio).map { String(format: "%.0f%%", $0 * 100) } ?? "-"
                        print(pad(row.shape, 16) + pad(layout, 8) + pad("\(t)", 9) + pad(fmt(row.median), 9)
                              + pad("\(fmt(row.min))–\(fmt(row.max))", 14) + pad(ref, 10) + ratio)
                    }
                    if resultLines {
                        print("RESULT\tours_gemm\(bf16 ? "_bf16" : "")/\(row.shape)/\(layout)/t\(t)\tGFLOP/s\t\(fmt(row.median))\t\(fmt(row.min))\t\(fmt(row.max))")
                    }
                    fflush(stdout)
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            let obj: [String: [Row]] = ["gemm": rows]
            print(String(decoding: try enc.encode(obj), as: UTF8.self))
        }
    }

    private func measure(_ m: Int, _ n: Int, _ k: Int, layout: String, threads: Int) -> Row {
        let transA = layout == "TN", transB = layout == "NT"
        let a = Tensor(shape: [m * k]), b = Tensor(shape: [k * n]), c = Tensor(shape: [m * n])
        for i in 0..<a.count { a[i] = Float(i % 17) * 0.01 - 0.08 }
        for i in 0..<b.count { b[i] = Float(i % 13) * 0.01 - 0.06 }
        let precision = gemmPrecision ?? .fp32
        let call = {
            Gemm.gemm(precision: precision, transA: transA, transB: transB, m: m, n: n, k: k, a: a.ptr, lda: transA ? m : k,
                       b: b.ptr, ldb: transB ? k : n, beta: 0, c: c.ptr, ldc: n)
        }
        call()   // warm-up: packing buffers, worker threads
        let flop = 2.0 * Double(m) * Double(n) * Double(k)
        var rates: [Double] = []
        for _ in 0..<samples {
            var reps = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            repeat {
                call(); reps += 1
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            } while elapsed < seconds
            rates.append(flop * Double(reps) / elapsed / 1e9)
        }
        rates.sort()
        let key = "\(m)x\(n)x\(k)"
        let median = rates[rates.count / 2]
        if precision == .bf16 {
            return Row(shape: key, layout: layout, threads: threads, median: median, min: rates.first!, max: rates.last!,
                       openblas: nil, ratio: nil, peakFraction: Self.bf16Peak[threads].map { median / $0 })
        }
        let ref = Self.openBLASReference["\(key)/\(layout)"].flatMap { threads == 1 ? $0.t1 : (threads == 2 ? $0.t2 : nil) }
        return Row(shape: key, layout: layout, threads: threads, median: median, min: rates.first!, max: rates.last!,
                   openblas: ref, ratio: ref.map { median / $0 })
    }

    private func fmt(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : String(format: "%.1f", x) }
    private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
}
