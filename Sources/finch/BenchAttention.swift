import ArgumentParser
import Foundation
import FinchKernels

/// `finch bench attention`: causal attention forward and backward (ms and GFLOP/s) at the SmolLM2-135M training
/// shape, at longer rows, and one decode step over a KV cache.
///
/// FLOP count per (batch, query head): forward 4·Tq·Tk·hd (q·kᵀ and p·v) halved for causality when Tq = Tk;
/// backward 2.5× the forward (q·kᵀ recomputed, dV, dP, dQ, dK: five products). Decode counts 4·Tk·hd.
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Causal attention forward/backward ms and GFLOP/s (median of samples) at the SmolLM2 shape, T=2048/4096, and decode.")

    @Option(name: .long, help: "Comma-separated thread counts.")
    var threads: String = "2"

    @Option(name: .long, help: "Samples per case (the median is reported); each sample runs the call at least once and ≥ --seconds.")
    var samples: Int = 5

    @Option(name: .long, help: "Seconds per sample.")
    var seconds: Double = 0.05

    @Option(name: .long, help: "Comma-separated cases: smollm2, t2048, t4096, decode (default all).")
    var cases: String = "smollm2,t2048,t4096,decode"

    @Flag(name: .long, help: "Print one JSON object instead of the table.")
    var json = false

    struct Case { var name: String; var batch: Int; var queries: Int; var keys: Int; var backward: Bool }
    static let all: [Case] = [
        Case(name: "smollm2", batch: 2, queries: 1024, keys: 1024, backward: true),
        Case(name: "t2048", batch: 1, queries: 2048, keys: 2048, backward: true),
        Case(name: "t4096", batch: 1, queries: 4096, keys: 4096, backward: true),
        Case(name: "decode", batch: 1, queries: 1, keys: 1024, backward: false),
    ]

    struct Row: Codable {
        var name: String, pass: String, threads: Int, batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
        var ms: Double, gflops: Double
    }

    func run() throws {
        let pool = ThreadPool.shared
        let saved = pool.threads
        defer { pool.setThreads(saved) }
        let wanted = cases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let tlist = threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
        var rows: [Row] = []
        if !json { print("case      pass      threads  ms          GFLOP/s   (heads 9, kv heads 3, hd 64)") }
        for t in tlist {
            pool.setThreads(t)
            for c in Self.all where wanted.contains(c.name) {
                for row in measure(c, threads: t) {
                    rows.append(row)
                    if !json {
                        print(pad(row.name, 10) + pad(row.pass, 10) + pad("\(t)", 9) + pad(String(format: "%.3f", row.ms), 12)
                              + String(format: "%.1f", row.gflops))
                        fflush(stdout)
                    }
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(["attention": rows]), as: UTF8.self))
        }
    }

    private func measure(_ c: Case, threads: Int) -> [Row] {
        let H = 9, KV = 3, hd = 64
        let s = AttentionShape(batch: c.batch, queries: c.queries, keys: c.keys, heads: H, kvHeads: KV, headDim: hd)
        func fill(_ n: Int, _ seed: Int) -> Tensor {
            let t = Tensor(shape: [n])
            for i in 0..<n { t[i] = Float((i &* 7919 &+ seed) % 1001) * 0.002 - 1 }
            return t
        }
        let q = fill(c.batch * c.queries * H * hd, 1), dOut = fill(c.batch * c.queries * H * hd, 2)
        let k = fill(c.batch * c.keys * KV * hd, 3), v = fill(c.batch * c.keys * KV * hd, 4)
        let out = Tensor(shape: [q.count]), lse = Tensor(shape: [c.batch * H * c.queries])
        let dq = Tensor(shape: [q.count]), dk = Tensor(shape: [k.count]), dv = Tensor(shape: [v.count])
        func rows(_ t: Tensor, _ len: Int, _ width: Int) -> StridedRows { StridedRows(t.ptr, rowStride: width, batchStride: len * width) }
        let qr = rows(q, c.queries, H * hd), kr = rows(k, c.keys, KV * hd), vr = rows(v, c.keys, KV * hd)
        let forward = {
            Attention.forward(s, q: qr, k: kr, v: vr, keyMask: nil, out: rows(out, c.queries, H * hd), lse: lse.ptr)
        }
        let backward = {
            Attention.backward(s, q: qr, k: kr, v: vr, out: rows(out, c.queries, H * hd), dOut: rows(dOut, c.queries, H * hd),
                               keyMask: nil, lse: lse.ptr, dq: rows(dq, c.queries, H * hd), dk: rows(dk, c.keys, KV * hd),
                               dv: rows(dv, c.keys, KV * hd))
        }
        // Visible (query, key) pairs: the causal triangle when queries end at the last key.
        var pairs = 0.0
        for i in 0..<c.queries { pairs += Double(min(c.keys, c.keys - c.queries + i + 1)) }
        let fwdFlop = 4 * pairs * Double(hd) * Double(H * c.batch)
        var result = [time(forward, name: c.name, pass: "forward", flop: fwdFlop, c, threads)]
        if c.backward { result.append(time(backward, name: c.name, pass: "backward", flop: 2.5 * fwdFlop, c, threads)) }
        return result
    }

    private func time(_ call: () -> Void, name: String, pass: String, flop: Double, _ c: Case, _ threads: Int) -> Row {
        call()   // warm-up (and, for the backward, the forward already ran: lse and out are valid)
        var msPerCall: [Double] = []
        for _ in 0..<max(1, samples) {
            var reps = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            repeat {
                call(); reps += 1
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            } while elapsed < seconds
            msPerCall.append(elapsed * 1000 / Double(reps))
        }
        msPerCall.sort()
        let ms = msPerCall[msPerCall.count / 2]
        return Row(name: name, pass: pass, threads: threads, batch: c.batch, queries: c.queries, keys: c.keys, heads: 9, kvHeads: 3,
                   headDim: 64, ms: ms, gflops: flop / (ms * 1e-3) / 1e9)
    }

    private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
}
