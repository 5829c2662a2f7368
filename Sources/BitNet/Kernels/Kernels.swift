import CKernels

/// The Swift face of one CKernels dispatch table. Every entry point checks
/// shapes and buffer sizes and throws ``KernelError`` before calling C, so
/// a caller's mistake is an error, never an out-of-bounds access.
public struct Kernels: @unchecked Sendable {
    let table: UnsafePointer<bn_kernels>
    public let isa: ISA

    /// The best level this machine runs, lowered by `BITNET_ISA` when set.
    public static var best: Kernels {
        let table = bn_kernels_best()!
        return Kernels(table: table, isa: ISA(rawValue: Int(table.pointee.isa.rawValue)) ?? .scalar)
    }

    private init(table: UnsafePointer<bn_kernels>, isa: ISA) {
        self.table = table
        self.isa = isa
    }

    /// A specific level, e.g. `.scalar` for the reference twins.
    public init(isa: ISA) throws {
        guard let table = bn_kernels_for(isa.raw) else { throw KernelError.unsupportedISA(isa) }
        self.init(table: table, isa: isa)
    }

    /// Per-token absmax int8 quantization of `rows` rows of `cols` floats (row-major, contiguous).
    package func quantize(_ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int, into out: QuantizedActivations) throws {
        guard rows >= 1, rows <= out.capacity else {
            throw KernelError.dimensionMismatch(what: "activation rows (capacity)", expected: out.capacity, actual: rows)
        }
        guard cols == out.cols else {
            throw KernelError.dimensionMismatch(what: "activation columns", expected: out.cols, actual: cols)
        }
        guard x.count >= rows * cols, let base = x.baseAddress else {
            throw KernelError.bufferSize(what: "activations", expected: rows * cols, actual: x.count)
        }
        table.pointee.quantize(base, Int32(rows), Int32(cols), Int32(cols), out.values.typed(Int8.self).baseAddress,
                               Int32(out.paddedCols), out.scales.typed(Float.self).baseAddress,
                               out.sums.typed(Int32.self).baseAddress)
        out.rows = rows
    }

    /// y (x.rows, w.rows) = x · wᵀ, dequantized; rows split over `pool` when given. A
    /// single row uses `table` (w's TL1/TL2 copy) when given: same result, other kernel.
    package func matmul(_ w: TernaryMatrix, _ x: QuantizedActivations, into y: UnsafeMutableBufferPointer<Float>,
                       pool: WorkerPool? = nil, table lookup: LookupTableMatrix? = nil) throws {
        guard x.cols == w.cols else {
            throw KernelError.dimensionMismatch(what: "activation columns vs weight columns", expected: w.cols, actual: x.cols)
        }
        guard x.rows >= 1 else {
            throw KernelError.dimensionMismatch(what: "quantized activation rows", expected: 1, actual: 0)
        }
        guard y.count >= x.rows * w.rows, let out = y.baseAddress else {
            throw KernelError.bufferSize(what: "matmul output", expected: x.rows * w.rows, actual: y.count)
        }
        if x.rows == 1, let tl = lookup {
            guard tl.rows == w.rows, tl.cols == w.cols else {
                throw KernelError.dimensionMismatch(what: "lookup table rows", expected: w.rows, actual: tl.rows)
            }
            tl.withDescriptor { descriptor in
                bn_tl_matmul(pool?.pool, table, descriptor, x.values.typed(Int8.self).baseAddress,
                             x.scales.typed(Float.self).baseAddress, 1, out, Int32(w.rows))
            }
            return
        }
        // a matrix held in place has only its TL bytes: every row count runs the TL kernels
        if w.inPlaceKernel != nil {
            w.withInPlaceDescriptor(n: x.rows) { descriptor in
                bn_tl_matmul(pool?.pool, table, descriptor, x.values.typed(Int8.self).baseAddress,
                             x.scales.typed(Float.self).baseAddress, Int32(x.rows), out, Int32(w.rows))
            }
            return
        }
        w.withDescriptor { descriptor in
            bn_i2s_matmul(pool?.pool, table, descriptor, x.values.typed(Int8.self).baseAddress,
                          x.scales.typed(Float.self).baseAddress, x.sums.typed(Int32.self).baseAddress,
                          Int32(x.rows), out, Int32(w.rows))
        }
    }
}

extension Kernels {
    /// `matmul` of several matrices with the same columns on one input (a layer's
    /// Q, K and V; gate and up) as one pool dispatch: their rows are split over
    /// the threads together, so a decode step waits at one barrier instead of one
    /// per matrix. Results equal separate `matmul` calls bit for bit.
    package func matmulMany(_ ws: [TernaryMatrix], _ x: QuantizedActivations,
                            into ys: [UnsafeMutableBufferPointer<Float>], pool: WorkerPool? = nil) throws {
        guard ws.count == ys.count, !ws.isEmpty else {
            throw KernelError.dimensionMismatch(what: "matrices vs outputs", expected: ws.count, actual: ys.count)
        }
        guard x.rows >= 1 else {
            throw KernelError.dimensionMismatch(what: "quantized activation rows", expected: 1, actual: 0)
        }
        for (w, y) in zip(ws, ys) {
            guard x.cols == w.cols else {
                throw KernelError.dimensionMismatch(what: "activation columns vs weight columns", expected: w.cols, actual: x.cols)
            }
            guard y.count >= x.rows * w.rows, y.baseAddress != nil else {
                throw KernelError.bufferSize(what: "matmul output", expected: x.rows * w.rows, actual: y.count)
            }
        }
        // matrices held in place have no I2_R16 descriptor: one dispatch each
        if ws.contains(where: { $0.inPlaceKernel != nil }) {
            for (w, y) in zip(ws, ys) { try matmul(w, x, into: y, pool: pool) }
            return
        }
        // (count,) descriptors, their pointers, outputs and strides: on the stack, since
        // this runs twice per layer in every decode step
        let count = ws.count
        withExtendedLifetime(ws) {
            withUnsafeTemporaryAllocation(of: bn_i2s_matrix.self, capacity: count) { d in
                withUnsafeTemporaryAllocation(of: UnsafePointer<bn_i2s_matrix>?.self, capacity: count) { p in
                    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: count) { o in
                        withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { ld in
                            for (i, w) in ws.enumerated() {
                                (d.baseAddress! + i).initialize(to: bn_i2s_matrix(
                                    data: UnsafePointer(w.storage!.pointer.assumingMemoryBound(to: UInt8.self)),
                                    m: Int32(w.rows), k: Int32(w.cols), m_pad: Int32(w.paddedRows),
                                    k_pad: Int32(w.paddedCols), scale: w.scale))
                                (p.baseAddress! + i).initialize(to: UnsafePointer(d.baseAddress! + i))
                                (o.baseAddress! + i).initialize(to: ys[i].baseAddress)
                                (ld.baseAddress! + i).initialize(to: Int32(w.rows))
                            }
                            bn_i2s_matmul_many(pool?.pool, table, p.baseAddress, Int32(count),
                                               x.values.typed(Int8.self).baseAddress, x.scales.typed(Float.self).baseAddress,
                                               x.sums.typed(Int32.self).baseAddress, Int32(x.rows), o.baseAddress,
                                               ld.baseAddress)
                        }
                    }
                }
            }
        }
    }
}
