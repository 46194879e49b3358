import Foundation

/// One output piece of a segmentation: its id (the unknown id for unknown characters) and its byte length in
/// the normalised text.
public struct PathPiece: Equatable, Sendable {
    public var id: Int32, length: Int32
}

/// Segmentations of short normalised segments (words), shared by the encoding threads: 64 lock-striped
/// open-addressing tables whose keys and paths live in per-shard arenas (no allocation per entry).
/// `tag` carries what the unigram encoder needs to decide whether a cached path holds in a new context.
final class SegmentCache: @unchecked Sendable {
    static let maxSegmentBytes = 64
    static let maxEntriesPerShard = 1 << 13   // then the shard starts over

    struct Slot {
        var hash: UInt64 = 0   // 0 = empty
        var key: UInt32 = 0, path: UInt32 = 0
        var keyLength: UInt16 = 0, pathCount: UInt16 = 0
        var tag: (Float, Float) = (0, 0)
    }

    final class Shard {
        /// Heap-allocated: a mutex must not move.
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        var slots = [Slot](repeating: Slot(), count: 256)
        var used = 0
        var keys: [UInt8] = []
        var paths: [PathPiece] = []
        init() { pthread_mutex_init(lock, nil) }
        deinit { pthread_mutex_destroy(lock); lock.deallocate() }

        /// The slot index holding the key, or the empty slot where it belongs.
        func find(_ key: UnsafeRawBufferPointer, _ h: UInt64) -> Int {
            slots.withUnsafeBufferPointer { slots in
                keys.withUnsafeBytes { keys in
                    let mask = slots.count - 1
                    var i = Int(truncatingIfNeeded: h) & mask
                    while true {
                        let s = slots[i]
                        if s.hash == 0 { return i }
                        if s.hash == h && Int(s.keyLength) == key.count
                            && memcmp(keys.baseAddress! + Int(s.key), key.baseAddress!, key.count) == 0 { return i }
                        i = (i + 1) & mask
                    }
                }
            }
        }

        func grow() {
            let old = slots
            slots = [Slot](repeating: Slot(), count: old.count * 2)
            let mask = slots.count - 1
            for s in old where s.hash != 0 {
                var i = Int(truncatingIfNeeded: s.hash) & mask
                while slots[i].hash != 0 { i = (i + 1) & mask }
                slots[i] = s
            }
        }
    }

    private let shards = (0..<64).map { _ in Shard() }

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

    /// Appends the cached path of `key` to `path` and returns its tag, or returns nil.
    func lookup(_ key: UnsafeRawBufferPointer, _ h: UInt64, appendingTo path: inout [PathPiece]) -> (Float, Float)? {
        let shard = shards[Int(truncatingIfNeeded: h >> 40) & 63]
        pthread_mutex_lock(shard.lock)
        defer { pthread_mutex_unlock(shard.lock) }
        let s = shard.slots[shard.find(key, h)]
        guard s.hash != 0 else { return nil }
        shard.paths.withUnsafeBufferPointer { path.append(contentsOf: UnsafeBufferPointer(rebasing: $0[Int(s.path)..<Int(s.path) + Int(s.pathCount)])) }
        return s.tag
    }

    func insert(_ key: UnsafeRawBufferPointer, _ h: UInt64, path: ArraySlice<PathPiece>, tag: (Float, Float)) {
        guard key.count <= Self.maxSegmentBytes, path.count <= Int(UInt16.max) else { return }
        let shard = shards[Int(truncatingIfNeeded: h >> 40) & 63]
        pthread_mutex_lock(shard.lock)
        defer { pthread_mutex_unlock(shard.lock) }
        if shard.used >= Self.maxEntriesPerShard {
            shard.slots = [Slot](repeating: Slot(), count: 256); shard.used = 0
            shard.keys.removeAll(keepingCapacity: true); shard.paths.removeAll(keepingCapacity: true)
        }
        if 2 * (shard.used + 1) > shard.slots.count { shard.grow() }
        let i = shard.find(key, h)
        guard shard.slots[i].hash == 0 else { return }   // another thread got there first
        shard.slots[i] = Slot(hash: h, key: UInt32(shard.keys.count), path: UInt32(shard.paths.count),
                              keyLength: UInt16(key.count), pathCount: UInt16(path.count), tag: tag)
        shard.keys.append(contentsOf: key)
        shard.paths.append(contentsOf: path)
        shard.used += 1
    }
}
