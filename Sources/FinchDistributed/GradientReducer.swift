import Foundation
import FinchKernels

/// Sums the trainable parameters' gradients over all ranks in buckets of about `bucketBytes`.
///
/// Tensors are laid out in the order the backward finishes them (top layer first, then down; tensors outside the
/// layers last), each bucket a run of whole tensors. During the last backward of a step the trainer says which layers
/// are done (`layerDone`), and every bucket whose tensors are all final starts its sum at once, while the backward
/// goes on below it (overlap); `finish()` starts the rest and waits for all. The layout depends only on the tensor
/// names and sizes, so every rank issues the same sums in the same order. Only trainable tensors take part: a LoRA
/// step moves the adapter's gradients, not the model.
public final class GradientReducer {
    struct Member { let name: String; let tensor: Tensor; let offset: Int }
    final class Bucket {
        var members: [Member] = []
        var count = 0
        /// The highest layer index among the members (nil: holds a tensor outside the layers, done only at the end).
        var lowestLayer: Int? = Int.max
        var buffer: UnsafeMutableBufferPointer<Float>?
        var pending: PendingReduction?
        deinit { buffer?.deallocate() }
    }

    public let communicator: Communicator
    public let names: [String]
    let buckets: [Bucket]
    private var next = 0
    /// Bytes each rank sends per step (the gradient floats; MPI's algorithm decides the wire volume).
    public let bytesPerStep: Int

    /// `gradients`: the trainable tensors' gradients by name; `layer(name)`: the decoder layer whose backward finishes
    /// that gradient (nil for embeddings, final norm, head, which are done only at the end).
    public init(communicator: Communicator, gradients: [String: Tensor], layer: (String) -> Int?, bucketBytes: Int) {
        self.communicator = communicator
        // Top layer first (the order the backward finishes them), outside-the-layers last, names within.
        let ordered = gradients.keys.map { ($0, layer($0)) }.sorted { a, b in
            switch (a.1, b.1) {
            case let (x?, y?): return x != y ? x > y : a.0 < b.0
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.0 < b.0
            }
        }
        names = ordered.map(\.0)
        var buckets: [Bucket] = []
        var current = Bucket()
        let limit = max(1, bucketBytes / 4)
        for (name, l) in ordered {
            let t = gradients[name]!
            if current.count > 0 && current.count + t.count > limit { buckets.append(current); current = Bucket() }
            current.members.append(Member(name: name, tensor: t, offset: current.count))
            current.count += t.count
            if let l, let low = current.lowestLayer { current.lowestLayer = min(low, l) } else { current.lowestLayer = nil }
        }
        if current.count > 0 { buckets.append(current) }
        self.buckets = buckets
        bytesPerStep = buckets.reduce(0) { $0 + 4 * $1.count }
    }

    public var bucketCount: Int { buckets.count }

    /// Whether this reducer was built for exactly these gradient tensors (same names, same buffers).
    public func holds(_ gradients: [String: Tensor]) -> Bool {
        gradients.count == names.count && buckets.allSatisfy { $0.members.allSatisfy { gradients[$0.name] === $0.tensor } }
    }

    /// Layer `layer`'s backward is complete (for the last micro-batch of the step): start every bucket whose tensors
    /// all lie in layers ≥ `layer`. Buckets start strictly in layout order.
    public func layerDone(_ layer: Int) throws {
        while next < buckets.count, let low = buckets[next].lowestLayer, low >= layer {
            try start(buckets[next])
            next += 1
        }
        // Drive the started sums forward: MPI progresses only inside its calls.
        for b in buckets[..<next] where b.pending != nil { _ = try b.pending!.test() }
    }

    /// Starts the remaining buckets, waits for every sum and writes the sums back into the gradients.
    public func finish() throws {
        while next < buckets.count { try start(buckets[next]); next += 1 }
        for b in buckets {
            try b.pending?.wait()
            b.pending = nil
            if let buf = b.buffer {
                for m in b.members { m.tensor.ptr.update(from: buf.baseAddress! + m.offset, count: m.tensor.count) }
            }
        }
        next = 0
    }

    private func start(_ b: Bucket) throws {
        guard communicator.size > 1 else { return }
        let target: UnsafeMutableBufferPointer<Float>
        if b.members.count == 1 {
            target = b.members[0].tensor.buffer   // one tensor: summed in place
        } else {
            if b.buffer == nil { b.buffer = .allocate(capacity: b.count) }
            target = b.buffer!
            for m in b.members { (target.baseAddress! + m.offset).update(from: m.tensor.ptr, count: m.tensor.count) }
        }
        b.pending = try communicator.startSum(target, what: "gradient all-reduce (\(b.members.count) tensors, \(b.count * 4) bytes)")
    }

    /// The decoder layer of a parameter name: the number after `layers.` (Llama, Qwen, Gemma) or `h.` (GPT-2), with
    /// or without a PEFT prefix; nil for embeddings, final norm and head.
    public static func layerIndex(of name: String) -> Int? {
        let parts = name.split(separator: ".")
        for (i, p) in parts.enumerated() where (p == "layers" || p == "h") && i + 1 < parts.count {
            if let n = Int(parts[i + 1]) { return n }
        }
        return nil
    }
}
