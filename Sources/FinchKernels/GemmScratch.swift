import Foundation

/// A per-thread, grow-only, 64-byte-aligned buffer for GEMM packing (fp32 values, or bf16 k-pairs as 32-bit words).
///
/// Packing buffers are reused across calls: allocating (and page-faulting) a megabyte per call would
/// cost more than the small GEMMs of decoding. Each OS thread owns its own, so concurrent callers and
/// the pool's workers never share one.
final class GemmScratch {
    private var ptr: UnsafeMutableRawPointer
    /// In 4-byte elements.
    private var capacity: Int

    private init() {
        capacity = 16
        ptr = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
    }

    private func reserve(_ count: Int) {
        if count > capacity {
            ptr.deallocate()
            capacity = max(count, capacity * 2)
            ptr = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64)
        }
    }

    /// A buffer of at least `count` floats (contents undefined).
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        reserve(count)
        return ptr.bindMemory(to: Float.self, capacity: count)
    }

    /// A buffer of at least `count` 32-bit words (contents undefined): bf16 panels, one k-pair per word.
    func words(_ count: Int) -> UnsafeMutablePointer<UInt32> {
        reserve(count)
        return ptr.bindMemory(to: UInt32.self, capacity: count)
    }

    private static let keys: [pthread_key_t] = (0..<2).map { _ in
        var k = pthread_key_t()
        pthread_key_create(&k) { p in if let p { Unmanaged<GemmScratch>.fromOpaque(p).release() } }
        return k
    }

    /// The calling thread's buffer number `slot` (0: packed A, 1: packed B).
    static func current(_ slot: Int) -> GemmScratch {
        let key = keys[slot]
        if let p = pthread_getspecific(key) { return Unmanaged<GemmScratch>.fromOpaque(p).takeUnretainedValue() }
        let s = GemmScratch()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }
}
