/// A row-major `[rows, cols]` matrix (a linear layer's weight `[out_features, in_features]`) stored as
/// ggml blocks along each row: row `r` is the `cols / blockSize` blocks starting at byte
/// `r * rowBytes`. Only tiles of it are ever turned into Float (see `QuantGemm`). Immutable after init, so it
/// may be shared between threads.
public final class QuantizedMatrix: @unchecked Sendable {
    public let format: QuantFormat
    public let rows: Int
    public let cols: Int
    /// `rows * (cols / blockSize) * blockBytes` bytes of blocks.
    public let data: UnsafeRawPointer
    /// Bytes of `data` (the weight bytes a full pass over the matrix reads).
    public var byteCount: Int { rows * rowBytes }
    /// Bytes of one row of blocks.
    public let rowBytes: Int

    /// Keeps borrowed bytes alive (e.g. the memory-mapped GGUF file).
    private let owner: AnyObject?
    /// Set when the matrix owns a copy of its bytes.
    private let owned: UnsafeMutableRawPointer?

    /// Borrows bytes owned by `owner` (e.g. a memory-mapped GGUF file); they must outlive the matrix.
    /// Throws when `cols` is not a multiple of the format's block size or a dimension is negative.
    public init(format: QuantFormat, rows: Int, cols: Int, borrowing data: UnsafeRawPointer, owner: AnyObject?) throws {
        try QuantizedMatrix.check(format, rows, cols)
        self.format = format; self.rows = rows; self.cols = cols
        self.rowBytes = cols / format.blockSize * format.blockBytes
        self.data = data; self.owner = owner; self.owned = nil
    }

    /// Takes a copy of the bytes; throws when `bytes` is not exactly `rows * (cols / blockSize) * blockBytes` long.
    public init(format: QuantFormat, rows: Int, cols: Int, bytes: [UInt8]) throws {
        try QuantizedMatrix.check(format, rows, cols)
        let rowBytes = cols / format.blockSize * format.blockBytes
        guard bytes.count == rows * rowBytes else {
            throw QuantError("a \(rows)×\(cols) \(format.rawValue) matrix needs \(rows * rowBytes) bytes, got \(bytes.count)")
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { copy.copyMemory(from: base, byteCount: $0.count) } }
        self.format = format; self.rows = rows; self.cols = cols; self.rowBytes = rowBytes
        self.data = UnsafeRawPointer(copy); self.owner = nil; self.owned = copy
    }

    deinit { owned?.deallocate() }

    private static func check(_ format: QuantFormat, _ rows: Int, _ cols: Int) throws {
        guard rows >= 0, cols >= 0 else { throw QuantError("matrix shape \(rows)×\(cols) has a negative dimension") }
        guard cols % format.blockSize == 0 else {
            throw QuantError("\(format.rawValue) stores rows in blocks of \(format.blockSize) elements: cols = \(cols) is not a multiple of \(format.blockSize)")
        }
    }

    /// The first byte of row `r`.
    @inline(__always)
    func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Dequantises rows `r0..<r1`, columns `c0..<c1` into `dst` (row `r` at `dst + (r - r0) * ld`),
    /// bit-identical with ggml's reference dequantisers. `c0` and `c1` must be multiples of 32.
    public func dequantize(rows rr: Range<Int>, cols cr: Range<Int>, into dst: UnsafeMutablePointer<Float>, ld: Int) {
        precondition(rr.lowerBound >= 0 && rr.upperBound <= rows && cr.lowerBound >= 0 && cr.upperBound <= cols,
                     "dequantize: rows \(rr) / cols \(cr) outside the \(rows)×\(cols) matrix")
        precondition(cr.lowerBound % 32 == 0 && cr.upperBound % 32 == 0, "dequantize: column bounds \(cr) must be multiples of 32")
        switch format {
        case .q8_0: QuantDequant.rows(Q8_0.self, self, rr, cr, dst, ld)
        case .q4_0: QuantDequant.rows(Q4_0.self, self, rr, cr, dst, ld)
        case .q4_1: QuantDequant.rows(Q4_1.self, self, rr, cr, dst, ld)
        case .q4_K: QuantDequant.rows(Q4_K.self, self, rr, cr, dst, ld)
        case .q6_K: QuantDequant.rows(Q6_K.self, self, rr, cr, dst, ld)
        case .q5_0: QuantDequant.rows(Q5_0.self, self, rr, cr, dst, ld)
        }
    }
}
