import COpenBLAS
import Foundation

// Inference copies of weight matrices in fewer bytes per weight: bfloat16 (2 bytes) or GGUF's
// Q8_0 blocks (32 int8 and one fp16 scale: 34 bytes per 32 weights). A decoding step is bound by
// reading the weights, so it gets faster by about the ratio of bytes. The products dequantize a
// panel of weight rows into an fp32 scratch that stays in cache and run the fp32 kernels over it:
// memory sees each low-precision weight once, for every row of X.

/// How a model's inference copy stores its linear weights.
public enum WeightPrecision: String, CaseIterable, Sendable, Codable {
    case fp32, bf16, q8_0

    /// Bytes per weight as stored (Q8_0: 34 bytes per block of 32).
    public var bytesPerWeight: Double {
        switch self {
        case .fp32: 4
        case .bf16: 2
        case .q8_0: Double(GGMLBlocks.q8_0Bytes) / Double(GGMLBlocks.q8_0Elements)
        }
    }

    /// `text` as a precision; anything else is an error that names `key` and the allowed values.
    public static func parse(_ text: String, key: String) throws(PrecisionError) -> WeightPrecision {
        guard let precision = WeightPrecision(rawValue: text) else { throw .unknown(key: key, value: text) }
        return precision
    }
}

/// A precision name a user got wrong.
public enum PrecisionError: Error, CustomStringConvertible, Equatable {
    case unknown(key: String, value: String)

    public var description: String {
        switch self {
        case let .unknown(key, value):
            "\(key): unknown precision \"\(value)\"; allowed: "
                + WeightPrecision.allCases.map(\.rawValue).joined(separator: ", ")
        }
    }
}

/// GGML's block formats (the GGUF reader dequantizes with these; Q8_0 inference copies quantize
/// with them). Each block covers 32 consecutive values of a row.
public enum GGMLBlocks {
    /// Values per Q8_0 block, and its bytes in a GGUF file (fp16 d, then 32 × int8 q).
    public static let q8_0Elements = 32, q8_0Bytes = 34

    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ byteOffset: Int) -> Float {
        HalfFloat.float(fromF16: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: byteOffset, as: UInt16.self)))
    }

    /// `blocks` Q8_0 blocks (34 bytes: fp16 d, 32 × int8 q) to 32 floats each: d · q.
    public static func dequantizeQ8_0(_ source: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = source + b &* 34
            let d = half(block, 0)
            let y = out + b &* 32
            for j in 0..<32 { y[j] = d * Float(block.load(fromByteOffset: 2 &+ j, as: Int8.self)) }
        }
    }

    /// `blocks` Q4_0 blocks (18 bytes: fp16 d, 16 bytes of nibbles) to 32 floats each: d · (q - 8),
    /// low nibbles first (elements 0-15), then high nibbles (16-31).
    public static func dequantizeQ4_0(_ source: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = source + b &* 18
            let d = half(block, 0)
            let y = out + b &* 32
            for j in 0..<16 {
                let q = block.load(fromByteOffset: 2 &+ j, as: UInt8.self)
                y[j] = d * Float(Int32(q & 0x0F) &- 8)
                y[j &+ 16] = d * Float(Int32(q >> 4) &- 8)
            }
        }
    }

    /// `blocks` Q4_1 blocks (20 bytes: fp16 d, fp16 m, 16 bytes of nibbles) to 32 floats each:
    /// d · q + m, low nibbles first (elements 0-15), then high nibbles (16-31).
    public static func dequantizeQ4_1(_ source: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = source + b &* 20
            let d = half(block, 0)
            let m = half(block, 2)
            let y = out + b &* 32
            for j in 0..<16 {
                let q = block.load(fromByteOffset: 4 &+ j, as: UInt8.self)
                y[j] = d * Float(q & 0x0F) + m
                y[j &+ 16] = d * Float(q >> 4) + m
            }
        }
    }

    /// One Q8_0 block of 32 values: d = max|x| / 127, q = round(x / d) (ties away from zero), d
    /// stored as fp16 (the quants are computed with the fp32 d, as GGML's reference quantizer does).
    /// Returns d's fp16 bits; writes the 32 quants.
    @inline(__always)
    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>) -> UInt16 {
        var amax: Float = 0
        for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d > 0 ? 1 / d : 0
        for j in 0..<32 { q[j] = Int8((x[j] * id).rounded()) }
        return Float16(d).bitPattern
    }
}

extension HalfFloat {
    /// `x` rounded to bfloat16 (to nearest, ties to even); NaN stays a (quiet) NaN.
    @inlinable @inline(__always)
    public static func bf16Bits(from x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }
}

/// A weight matrix W `[rows, columns]` (the `[out, in]` layout of Rein's linear layers) stored in
/// bfloat16 or Q8_0 for inference: X·Wᵀ through ``lowPrecisionMatmul(m:_:ldx:_:bias:_:ldy:)``.
///
/// Q8_0 keeps GGUF's blocks (32 int8 quants, one fp16 scale) as two planes, the quants row-major
/// and the scales apart, so a row's quants are one contiguous run the kernels read as vectors.
public final class LowPrecisionMatrix: @unchecked Sendable {
    /// `.bf16` or `.q8_0`.
    public let precision: WeightPrecision
    /// n (outputs) and k (inputs).
    public let rows: Int, columns: Int
    /// bf16: rows·columns UInt16; Q8_0: rows·columns Int8.
    private let values: UnsafeMutableRawPointer
    /// Q8_0: rows·columns/32 fp16 scales, one per block.
    private let scales: UnsafeMutablePointer<UInt16>?

    /// Whether a matrix of `columns` inputs can be stored at `precision` (Q8_0 needs whole blocks).
    public static func supports(_ precision: WeightPrecision, columns: Int) -> Bool {
        switch precision {
        case .fp32: false
        case .bf16: columns > 0
        case .q8_0: columns > 0 && columns % GGMLBlocks.q8_0Elements == 0
        }
    }

    /// The `[rows, columns]` matrix at `weights` (fp32, row-major) rounded to `precision`.
    public init(_ weights: UnsafePointer<Float>, rows: Int, columns: Int, precision: WeightPrecision) {
        precondition(rows > 0 && Self.supports(precision, columns: columns),
                     "LowPrecisionMatrix: \(rows) x \(columns) cannot be stored as \(precision)")
        self.precision = precision
        self.rows = rows
        self.columns = columns
        let count = rows * columns
        if precision == .bf16 {
            values = UnsafeMutableRawPointer.allocate(byteCount: count * 2, alignment: 64)
            scales = nil
        } else {
            values = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            scales = UnsafeMutablePointer<UInt16>.allocate(capacity: count / GGMLBlocks.q8_0Elements)
        }
        update(from: weights)
    }

    /// W `[n, k]` rounded to `precision`.
    public convenience init(_ weight: Tensor, precision: WeightPrecision) {
        precondition(weight.rank == 2, "LowPrecisionMatrix: weight \(weight.shape) is not a matrix")
        self.init(weight.data, rows: weight.shape[0], columns: weight.shape[1], precision: precision)
    }

    deinit {
        values.deallocate()
        scales?.deallocate()
    }

    /// Bytes the stored matrix takes (what a product reads).
    public var byteCount: Int {
        precision == .bf16 ? rows * columns * 2 : rows * columns + rows * columns / GGMLBlocks.q8_0Elements * 2
    }

    /// Rounds the fp32 matrix at `weights` (same shape) into this storage again: a rollout copy
    /// refreshed after an update allocates nothing.
    public func update(from weights: UnsafePointer<Float>) {
        let k = columns
        parallelFor(rows, grain: Swift.max(1, elementGrain / k)) { _, lo, hi in
            if precision == .bf16 {
                let out = values.assumingMemoryBound(to: UInt16.self)
                var i = lo &* k
                let end = hi &* k
                while i < end { out[i] = HalfFloat.bf16Bits(from: weights[i]); i &+= 1 }
            } else {
                let q = values.assumingMemoryBound(to: Int8.self), s = scales!
                var b = lo &* k / 32
                let end = hi &* k / 32
                while b < end { s[b] = GGMLBlocks.quantizeQ8_0(weights + b &* 32, q + b &* 32); b &+= 1 }
            }
        }
    }

    /// Rows r0..<r1 as fp32 into `out` (`[r1 - r0, columns]`).
    @inline(__always)
    func dequantize(rows r0: Int, _ r1: Int, into out: UnsafeMutablePointer<Float>) {
        let k = columns
        if precision == .bf16 {
            let src = values.assumingMemoryBound(to: UInt16.self) + r0 &* k
            let count = (r1 &- r0) &* k
            var i = 0
            while i < count { out[i] = Float(bitPattern: UInt32(src[i]) &<< 16); i &+= 1 }
        } else {
            let q = values.assumingMemoryBound(to: Int8.self) + r0 &* k
            let s = scales! + r0 &* k / 32
            let blocks = (r1 &- r0) &* k / 32
            var b = 0
            while b < blocks {
                let d = HalfFloat.float(fromF16: s[b])
                let qb = q + b &* 32, ob = out + b &* 32
                for j in 0..<32 { ob[j] = d * Float(qb[j]) }
                b &+= 1
            }
        }
    }

    /// The stored matrix as fp32 `[rows, columns]` (what the products multiply by).
    public func dequantized() -> Tensor {
        let out = Tensor(uninitialized: [rows, columns])
        parallelFor(rows, grain: Swift.max(1, elementGrain / columns)) { _, lo, hi in
            dequantize(rows: lo, hi, into: out.data + lo &* columns)
        }
        return out
    }

    /// Weight rows per dequantized panel of a few-row product: a multiple of the 3-row register
    /// tile, about 32 KB of fp32 (L1-sized) unless one tile is larger.
    var panelRows: Int {
        let tile = skinnyTileColumns
        return Swift.max(tile, (8192 / columns) / tile * tile)
    }
}

/// Y[m×n] (row stride `ldy`) = X[m×k] (row stride `ldx`) · Wᵀ (+ bias[n] on every row), W a
/// low-precision `[n, k]` matrix. Up to ``SkinnyMatmul/maxRows`` rows: each panel of W is
/// dequantized once into an fp32 scratch in cache and the few-row kernel runs every row over it
/// (parallel over panels of output columns). More rows (prefill): tiles of W dequantized to fp32,
/// then `cblas_sgemm` per tile. Inference only (no autodiff).
public func lowPrecisionMatmul(m: Int, _ X: UnsafePointer<Float>, ldx: Int, _ W: LowPrecisionMatrix,
                               bias: UnsafePointer<Float>?, _ Y: UnsafeMutablePointer<Float>, ldy: Int) {
    guard m > 0 else { return }
    if m > SkinnyMatmul.maxRows {
        lowPrecisionFull(m: m, X, ldx: ldx, W, bias: bias, Y, ldy: ldy)
    } else if Threads.cpuHasAVX512 {
        lowPrecisionSkinny(SIMD16<Float>.self, m: m, X, ldx: ldx, W, bias: bias, Y, ldy: ldy)
    } else {
        lowPrecisionSkinny(SIMD8<Float>.self, m: m, X, ldx: ldx, W, bias: bias, Y, ldy: ldy)
    }
}

/// The few-row product at a given vector width (tests run both widths on any x86-64 CPU).
func lowPrecisionSkinny<V: SIMD>(_: V.Type, m: Int, _ X: UnsafePointer<Float>, ldx: Int, _ W: LowPrecisionMatrix,
                                 bias: UnsafePointer<Float>?, _ Y: UnsafeMutablePointer<Float>, ldy: Int)
where V.Scalar == Float {
    let n = W.rows, k = W.columns
    let panel = W.panelRows
    let panels = (n &+ panel &- 1) / panel
    // A chunk reads as many bytes as an fp32 chunk of the few-row kernel reads at least.
    let grain = Swift.max(1, Int(Double(skinnyChunkFloats) * 4 / W.precision.bytesPerWeight) / (panel &* k))
    func run(_ lo: Int, _ hi: Int) {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: panel &* k)
        defer { scratch.deallocate() }
        var p = lo
        while p < hi {
            let j = p &* panel, count = Swift.min(panel, n &- j)
            W.dequantize(rows: j, j &+ count, into: scratch)
            skinnyOutputMajor(V.self, m: m, k: k, X, ldx, UnsafePointer(scratch), bias.map { $0 + j }, Y + j, ldy,
                              columns: 0, count)
            p &+= 1
        }
    }
    let workers = workerCount(panels, grain: grain)
    guard workers > 1 else { run(0, panels); return }
    let chunks = Swift.min(panels / grain, workers &* 4)
    withoutActuallyEscaping(run) { run in
        nonisolated(unsafe) let body = run
        DispatchQueue.concurrentPerform(iterations: chunks) { c in body(panels &* c / chunks, panels &* (c &+ 1) / chunks) }
    }
}

/// Many rows (a prompt's prefill, a scoring forward): compute-bound, so BLAS does the arithmetic on
/// tiles of W dequantized to fp32 (about 1 MB each, dequantized on the kernel threads).
func lowPrecisionFull(m: Int, _ X: UnsafePointer<Float>, ldx: Int, _ W: LowPrecisionMatrix,
                      bias: UnsafePointer<Float>?, _ Y: UnsafeMutablePointer<Float>, ldy: Int) {
    let n = W.rows, k = W.columns
    let tile = Swift.min(n, Swift.max(16, (1 << 18) / k))
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile &* k)
    defer { scratch.deallocate() }
    var j = 0
    while j < n {
        let count = Swift.min(tile, n &- j)
        parallelFor(count, grain: Swift.max(1, elementGrain / k)) { _, lo, hi in
            W.dequantize(rows: j &+ lo, j &+ hi, into: scratch + lo &* k)
        }
        if let bias { for r in 0..<m { (Y + (r &* ldy &+ j)).update(from: bias + j, count: count) } }
        sgemm(false, true, m, count, k, X, ldx, scratch, k, beta: bias == nil ? 0 : 1, Y + j, ldy)
        j &+= count
    }
}

/// x · Wᵀ + bias for inference with a low-precision W `[Out, In]`, x `[..., In]`, bias `[Out]`
/// (fp32). Records no gradient: low-precision copies serve forward passes only.
public func lowPrecisionLinear(_ x: Tensor, weight: LowPrecisionMatrix, bias: Tensor? = nil) -> Tensor {
    precondition(x.lastDim == weight.columns && (bias == nil || bias!.count == weight.rows),
                 "lowPrecisionLinear: x \(x.shape), weight [\(weight.rows), \(weight.columns)], bias \(bias?.shape ?? [])")
    let In = weight.columns, Out = weight.rows, rows = x.count / In
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [Out])
    lowPrecisionMatmul(m: rows, x.data, ldx: In, weight, bias: bias?.data, out.data, ldy: Out)
    return out
}
