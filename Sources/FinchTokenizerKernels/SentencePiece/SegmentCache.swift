import Foundation

/// One output piece of a segmentation: its id (the unknown id for unknown characters) and its byte length in
/// the normalised text.
public struct PathPiece: Equatable, Sendable {
    public var id: Int32, length: Int32
}

/// Segmentations of short normalised segments (words), shared by the encoding threads. Each entry is one
/// 128-byte slot (two adjacent cache lines) holding its hash, key bytes, path and tag, so a lookup touches one
/// place in memory (a table of separate key and path arenas cost three cache misses per word). Direct-mapped: a new word overwrites the
/// one in its slot. 64 locks, picked by slot index, guard the slots.
final class SegmentCache: @unchecked Sendable {
    /// Longest cached segment (an indented line of code is one segment) and most pieces per entry.
    static let maxSegmentBytes = 64, maxPieces = 11
    static let slotBytes = 128, slotCount = 1 << 15   // 4 MiB
    // Slot layout: hash u64 @0 (0 = empty), key length u8 @8, piece count u8 @9, tag f32×2 @12, key @20,
    // pieces u32 (id << 8 | length) @84.
    private let lines: UnsafeMutableRawPointer
    private let locks: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        lines = UnsafeMutableRawPointer.allocate(byteCount: Self.slotBytes * Self.slotCount, alignment: 128)
        lines.initializeMemory(as: UInt8.self, repeating: 0, count: Self.slotBytes * Self.slotCount)
        locks = .allocate(capacity: 64)
        for i in 0..<64 { pthread_mutex_init(locks + i, nil) }
    }

    deinit {
        for i in 0..<64 { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
        lines.deallocate()
    }

    @inline(__always) static func hash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(p.count) &* 0xFF51_AFD7_ED55_8CCD)
        var i = 0
        while i + 8 <= p.count {
            h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xC6A4_A793_5BD1_E995
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < p.count { tail |= UInt64(p[i]) << shift; shift += 8; i += 1 }
        h = (h ^ tail) &* 0xC6A4_A793_5BD1_E995
        h ^= h >> 32
        return h | 1
    }

    @inline(__always) private func slot(_ h: UInt64) -> Int { Int(truncatingIfNeeded: h >> 8) & (Self.slotCount - 1) }
    @inline(__always) private func line(_ h: UInt64) -> UnsafeMutableRawPointer { lines + Self.slotBytes * slot(h) }
    // The lock comes from the slot index, not from other hash bits: two words that share a slot must share its
    // lock (picking it from the top hash bits let two threads write one slot under different locks).
    @inline(__always) private func lock(_ h: UInt64) -> UnsafeMutablePointer<pthread_mutex_t> { locks + (slot(h) & 63) }

    /// Appends the cached path of `key` to `path` and returns its tag, or returns nil.
    func lookup(_ key: UnsafeRawBufferPointer, _ h: UInt64, appendingTo path: inout [PathPiece]) -> (Float, Float)? {
        guard key.count <= Self.maxSegmentBytes else { return nil }
        let l = line(h), m = lock(h)
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        guard l.load(as: UInt64.self) == h, Int(l.load(fromByteOffset: 8, as: UInt8.self)) == key.count,
              memcmp(l + 20, key.baseAddress!, key.count) == 0 else { return nil }
        let count = Int(l.load(fromByteOffset: 9, as: UInt8.self))
        for k in 0..<count {
            let v = l.load(fromByteOffset: 84 + 4 * k, as: UInt32.self)
            path.append(PathPiece(id: Int32(v >> 8), length: Int32(v & 0xFF)))
        }
        return (l.load(fromByteOffset: 12, as: Float.self), l.load(fromByteOffset: 16, as: Float.self))
    }

    func insert(_ key: UnsafeRawBufferPointer, _ h: UInt64, path: ArraySlice<PathPiece>, tag: (Float, Float)) {
        guard key.count <= Self.maxSegmentBytes, path.count <= Self.maxPieces,
              path.allSatisfy({ $0.id >= 0 && $0.id < 1 << 24 && $0.length < 256 }) else { return }
        let l = line(h), m = lock(h)
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        l.storeBytes(of: h, as: UInt64.self)
        l.storeBytes(of: UInt8(key.count), toByteOffset: 8, as: UInt8.self)
        l.storeBytes(of: UInt8(path.count), toByteOffset: 9, as: UInt8.self)
        l.storeBytes(of: tag.0, toByteOffset: 12, as: Float.self)
        l.storeBytes(of: tag.1, toByteOffset: 16, as: Float.self)
        (l + 20).copyMemory(from: key.baseAddress!, byteCount: key.count)
        for (k, p) in path.enumerated() { l.storeBytes(of: UInt32(p.id) << 8 | UInt32(p.length), toByteOffset: 84 + 4 * k, as: UInt32.self) }
    }
}
