// Register tiles for the attention products, written out by a small script so that every accumulator is a
// named zmm variable (Swift keeps no array of SIMD values in registers). A is read through two strides so the
// same kernel serves A and Aᵀ (P·V and Pᵀ·dO) without transposing; B rows are contiguous, 16-float multiples.
enum AttentionTile {
    /// C[4×64] (= or +=) Σₖ A(r, k)·B[k, 0..<64], A(r, k) = a[r·ars + k·aks]. Rows ≥ `rows` reuse row 0's
    /// A and are not stored.
    @inline(__always)
    static func mul4x64(rows: Int, _ a: UnsafePointer<Float>, ars: Int, aks: Int, _ b: UnsafePointer<Float>, ldb: Int, k n: Int,
                     _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        var c0_0 = F16(); var c0_1 = F16(); var c0_2 = F16(); var c0_3 = F16();
        var c1_0 = F16(); var c1_1 = F16(); var c1_2 = F16(); var c1_3 = F16();
        var c2_0 = F16(); var c2_1 = F16(); var c2_2 = F16(); var c2_3 = F16();
        var c3_0 = F16(); var c3_1 = F16(); var c3_2 = F16(); var c3_3 = F16();
        let a0 = a, a1 = a + (rows > 1 ? ars : 0), a2 = a + (rows > 2 ? 2 * ars : 0), a3 = a + (rows > 3 ? 3 * ars : 0)
        var pb = UnsafeRawPointer(b), off = 0
        for _ in 0..<n {
            let b0 = pb.load(fromByteOffset: 0, as: F16.self)
            let b1 = pb.load(fromByteOffset: 64, as: F16.self)
            let b2 = pb.load(fromByteOffset: 128, as: F16.self)
            let b3 = pb.load(fromByteOffset: 192, as: F16.self)
            let x0 = F16(repeating: a0[off])
            c0_0 = c0_0.addingProduct(x0, b0)
            c0_1 = c0_1.addingProduct(x0, b1)
            c0_2 = c0_2.addingProduct(x0, b2)
            c0_3 = c0_3.addingProduct(x0, b3)
            let x1 = F16(repeating: a1[off])
            c1_0 = c1_0.addingProduct(x1, b0)
            c1_1 = c1_1.addingProduct(x1, b1)
            c1_2 = c1_2.addingProduct(x1, b2)
            c1_3 = c1_3.addingProduct(x1, b3)
            let x2 = F16(repeating: a2[off])
            c2_0 = c2_0.addingProduct(x2, b0)
            c2_1 = c2_1.addingProduct(x2, b1)
            c2_2 = c2_2.addingProduct(x2, b2)
            c2_3 = c2_3.addingProduct(x2, b3)
            let x3 = F16(repeating: a3[off])
            c3_0 = c3_0.addingProduct(x3, b0)
            c3_1 = c3_1.addingProduct(x3, b1)
            c3_2 = c3_2.addingProduct(x3, b2)
            c3_3 = c3_3.addingProduct(x3, b3)
            off += aks; pb += ldb * 4
        }
        do {
            let p = c + 0 * ldc
            store16(accumulate ? load16(p + 0) + c0_0 : c0_0, p + 0)
            store16(accumulate ? load16(p + 16) + c0_1 : c0_1, p + 16)
            store16(accumulate ? load16(p + 32) + c0_2 : c0_2, p + 32)
            store16(accumulate ? load16(p + 48) + c0_3 : c0_3, p + 48)
        }
        if rows > 1 {
            let p = c + 1 * ldc
            store16(accumulate ? load16(p + 0) + c1_0 : c1_0, p + 0)
            store16(accumulate ? load16(p + 16) + c1_1 : c1_1, p + 16)
            store16(accumulate ? load16(p + 32) + c1_2 : c1_2, p + 32)
            store16(accumulate ? load16(p + 48) + c1_3 : c1_3, p + 48)
        }
        if rows > 2 {
            let p = c + 2 * ldc
            store16(accumulate ? load16(p + 0) + c2_0 : c2_0, p + 0)
            store16(accumulate ? load16(p + 16) + c2_1 : c2_1, p + 16)
            store16(accumulate ? load16(p + 32) + c2_2 : c2_2, p + 32)
            store16(accumulate ? load16(p + 48) + c2_3 : c2_3, p + 48)
        }
        if rows > 3 {
            let p = c + 3 * ldc
            store16(accumulate ? load16(p + 0) + c3_0 : c3_0, p + 0)
            store16(accumulate ? load16(p + 16) + c3_1 : c3_1, p + 16)
            store16(accumulate ? load16(p + 32) + c3_2 : c3_2, p + 32)
            store16(accumulate ? load16(p + 48) + c3_3 : c3_3, p + 48)
        }
    }

    /// C[4×16] (= or +=) Σₖ A(r, k)·B[k, 0..<16], A(r, k) = a[r·ars + k·aks]. Rows ≥ `rows` reuse row 0's
    /// A and are not stored.
    @inline(__always)
    static func mul4x16(rows: Int, _ a: UnsafePointer<Float>, ars: Int, aks: Int, _ b: UnsafePointer<Float>, ldb: Int, k n: Int,
                     _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        var c0_0 = F16();
        var c1_0 = F16();
        var c2_0 = F16();
        var c3_0 = F16();
        let a0 = a, a1 = a + (rows > 1 ? ars : 0), a2 = a + (rows > 2 ? 2 * ars : 0), a3 = a + (rows > 3 ? 3 * ars : 0)
        var pb = UnsafeRawPointer(b), off = 0
        for _ in 0..<n {
            let b0 = pb.load(fromByteOffset: 0, as: F16.self)
            let x0 = F16(repeating: a0[off])
            c0_0 = c0_0.addingProduct(x0, b0)
            let x1 = F16(repeating: a1[off])
            c1_0 = c1_0.addingProduct(x1, b0)
            let x2 = F16(repeating: a2[off])
            c2_0 = c2_0.addingProduct(x2, b0)
            let x3 = F16(repeating: a3[off])
            c3_0 = c3_0.addingProduct(x3, b0)
            off += aks; pb += ldb * 4
        }
        do {
            let p = c + 0 * ldc
            store16(accumulate ? load16(p + 0) + c0_0 : c0_0, p + 0)
        }
        if rows > 1 {
            let p = c + 1 * ldc
            store16(accumulate ? load16(p + 0) + c1_0 : c1_0, p + 0)
        }
        if rows > 2 {
            let p = c + 2 * ldc
            store16(accumulate ? load16(p + 0) + c2_0 : c2_0, p + 0)
        }
        if rows > 3 {
            let p = c + 3 * ldc
            store16(accumulate ? load16(p + 0) + c3_0 : c3_0, p + 0)
        }
    }

    /// C[rows × cols] (= or +=) A·B for any rows and cols a multiple of 16: 4-row groups, 64- then 16-column tiles.
    @inline(__always)
    static func product(rows: Int, cols: Int, _ a: UnsafePointer<Float>, ars: Int, aks: Int, _ b: UnsafePointer<Float>, ldb: Int,
                        k n: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        var r = 0
        while r < rows {
            let m = min(4, rows - r), ar = a + r * ars, cr = c + r * ldc
            var j = 0
            while j + 64 <= cols {
                mul4x64(rows: m, ar, ars: ars, aks: aks, b + j, ldb: ldb, k: n, cr + j, ldc: ldc, accumulate: accumulate); j += 64
            }
            while j < cols {
                mul4x16(rows: m, ar, ars: ars, aks: aks, b + j, ldb: ldb, k: n, cr + j, ldc: ldc, accumulate: accumulate); j += 16
            }
            r += 4
        }
    }
}
