/// A dense float32 tensor: a shape and a 64-byte-aligned buffer the kernels work on directly.
///
/// A class so that several owners (a parameter store, an optimizer, a gradient map) share one buffer
/// without copies; `ptr` stays valid for the tensor's lifetime.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>

    /// A zero-filled tensor of the given shape.
    public init(shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        self.ptr = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        ptr.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "Tensor: \(values.count) values for shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { ptr.update(from: $0.baseAddress!, count: count) }
    }

    deinit { ptr.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: ptr, count: count) }
    public var array: [Float] { Array(buffer) }

    public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }

    public func zero() { ptr.update(repeating: 0, count: count) }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.ptr.update(from: ptr, count: count)
        return t
    }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "Tensor.copy(from:): \(other.shape) into \(shape)")
        ptr.update(from: other.ptr, count: count)
    }
}
