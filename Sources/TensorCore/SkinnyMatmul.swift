import COpenBLAS
import Foundation

// Products with few rows (a decoding step: one row per sequence of the batch) are bound by reading
// the weights, not by arithmetic: Y[m×n] = X[m×k]·W reads k·n weights for 2·m·k·n flops.
// `cblas_sgemm` packs the whole weight matrix into its panel format on every call, so at m = 8 it
// moves each weight three times; these kernels read each weight once from memory for all m rows
// and keep the few rows of X in cache. Register tiles use SIMD8 (AVX2) or SIMD16 (AVX-512) lanes.

/// When linear layers take the few-row kernel instead of `cblas_sgemm`.
public enum SkinnyMatmul {
    /// Most rows that go through the few-row kernel (a decoding batch); more rows, prompt prefill
    /// and training, stay on BLAS, which is compute-bound there.
    public static let maxRows = 16

    /// False sends every product to BLAS, for comparisons: `SkinnyMatmul.$isEnabled.withValue(false) { ... }`
    /// (task-local, so a test's choice is its own); `REIN_SKINNY_MATMUL=0` makes false the default.
    @TaskLocal public static var isEnabled = ProcessInfo.processInfo.environment["REIN_SKINNY_MATMUL"] != "0"

    /// Whether a product with `rows` rows of X and a `k`×`n` weight takes the few-row kernel.
    public static func applies(rows: Int, k: Int, n: Int) -> Bool {
        isEnabled && rows >= 1 && rows <= maxRows && k > 0 && n > 0
    }
}

/// How a weight matrix W of a product X[m×k]·W is stored.
public enum WeightLayout: Sendable {
    /// W is `[n, k]`: row j holds output j's weights (torch `nn.Linear`, Rein's decoder layers and
    /// the tied LM head); the product is X·Wᵀ.
    case outputMajor
    /// W is `[k, n]` (GPT-2's Conv1D as stored by Hugging Face); the product is X·W.
    case inputMajor
}

/// Y[m×n] (row stride `ldy`) = X[m×k] (row stride `ldx`) · W (+ bias[n] on every row), with the
/// weights read once for all rows; parallel over output columns above a size threshold.
/// Inference only (no autodiff); `m` should be small (see ``SkinnyMatmul/maxRows``).
public func skinnyMatmul(m: Int, n: Int, k: Int, _ X: UnsafePointer<Float>, ldx: Int,
                         _ W: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?,
                         _ Y: UnsafeMutablePointer<Float>, ldy: Int) {
    if Threads.cpuHasAVX512 {
        skinnyMatmul(SIMD16<Float>.self, m: m, n: n, k: k, X, ldx: ldx, W, layout: layout, bias: bias, Y, ldy: ldy)
    } else {
        skinnyMatmul(SIMD8<Float>.self, m: m, n: n, k: k, X, ldx: ldx, W, layout: layout, bias: bias, Y, ldy: ldy)
    }
}

/// The kernel at a given vector width (tests run both widths on any x86-64 CPU).
func skinnyMatmul<V: SIMD>(_: V.Type, m: Int, n: Int, k: Int, _ X: UnsafePointer<Float>, ldx: Int,
                           _ W: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?,
                           _ Y: UnsafeMutablePointer<Float>, ldy: Int) where V.Scalar == Float {
    guard m > 0 && n > 0 else { return }
    guard k > 0 else {
        for r in 0..<m {
            if let bias { (Y + r &* ldy).update(from: bias, count: n) } else { (Y + r &* ldy).update(repeating: 0, count: n) }
        }
        return
    }
    // Output columns go out in groups (3 weight rows, or 2 vectors of weight columns); each chunk of
    // groups reads at least `skinnyChunkFloats` weights, so small products stay on one thread.
    let group = layout == .outputMajor ? skinnyTileColumns : 2 &* V.scalarCount
    let groups = (n &+ group &- 1) / group
    let grain = Swift.max(1, skinnyChunkFloats / (group &* k))
    func run(_ lo: Int, _ hi: Int) {
        let j0 = lo &* group, j1 = Swift.min(hi &* group, n)
        switch layout {
        case .outputMajor:
            skinnyOutputMajor(V.self, m: m, k: k, X, ldx, W, bias, Y, ldy, columns: j0, j1)
        case .inputMajor:
            skinnyInputMajor(V.self, m: m, n: n, k: k, X, ldx, W, bias, Y, ldy, columns: j0, j1)
        }
    }
    // Up to 4 chunks per thread, taken in order by whichever thread is free: on a shared machine a
    // thread that loses its core for a moment does not hold the whole product back.
    let workers = workerCount(groups, grain: grain)
    guard workers > 1 else { run(0, groups); return }
    let chunks = Swift.min(groups / grain, workers &* 4)
    withoutActuallyEscaping(run) { run in
        nonisolated(unsafe) let body = run
        DispatchQueue.concurrentPerform(iterations: chunks) { c in body(groups &* c / chunks, groups &* (c &+ 1) / chunks) }
    }
}

/// Weights per thread below which a few-row product is not split (about 256 KiB: a split costs a
/// few microseconds, reading 256 KiB takes about 13 µs at 20 GB/s).
let skinnyChunkFloats = 1 << 16

@inline(__always)
func loadVector<V: SIMD>(_ p: UnsafePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

/// Sum of the lanes as a tree of half-width adds (8 and 16 lanes), the order fixed by the width.
@inline(__always)
func laneSum<V: SIMD>(_ v: V) -> Float where V.Scalar == Float {
    if V.scalarCount == 16 {
        let w = unsafeBitCast(v, to: SIMD16<Float>.self)
        let h = w.lowHalf + w.highHalf
        let q = h.lowHalf + h.highHalf
        let p = q.lowHalf + q.highHalf
        return p[0] + p[1]
    }
    if V.scalarCount == 8 {
        let w = unsafeBitCast(v, to: SIMD8<Float>.self)
        let q = w.lowHalf + w.highHalf
        let p = q.lowHalf + q.highHalf
        return p[0] + p[1]
    }
    return v.sum()
}

/// W rows per tile of the output-major kernel (the 4 × 3 register tile: 12 accumulators, 3 weight
/// vectors, one X vector, 16 registers).
let skinnyTileColumns = 3

/// Dot product of x and w over i in kv..<k (the part of k not covered by whole vectors).
@inline(__always)
func dotTail(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, from kv: Int, to k: Int) -> Float {
    var s: Float = 0
    var i = kv
    while i < k { s += x[i] * w[i]; i &+= 1 }
    return s
}

/// W `[n, k]`, columns j0..<j1: each output is a dot product of an X row and a W row. Tiles of 3
/// weight rows × 4 X rows (12 accumulators, 7 loads per 12 FMAs); the 3 weight rows stay in L1
/// while every group of X rows passes over them, so memory sees each weight once. The next tile's
/// weights are prefetched evenly over the passes of this one, so memory stays busy while the later
/// passes run from cache (without it, at m = 8 memory idled three passes in four).
@inline(__always)
func skinnyOutputMajor<V: SIMD>(_: V.Type, m: Int, k: Int, _ X: UnsafePointer<Float>, _ ldx: Int,
                                _ W: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                _ Y: UnsafeMutablePointer<Float>, _ ldy: Int, columns j0: Int, _ j1: Int)
where V.Scalar == Float {
    let L = V.scalarCount
    let kv = k &- k % L   // k covered by whole vectors
    // Vector steps per tile over all passes (4, 2 and 1 rows at a time), and the prefetch stride
    // that covers the next tile's 3·k floats in that many steps.
    let passes = m / 4 &+ (m % 4) / 2 &+ (m % 2)
    let steps = Swift.max(1, passes &* (kv / L))
    let tileBytes = skinnyTileColumns &* k &* 4
    let stride = (tileBytes &+ steps &- 1) / steps
    let second = stride > 64, third = stride > 128
    var j = j0
    while j &+ 3 <= j1 {
        let w0 = W + j &* k, w1 = w0 + k, w2 = w1 + k
        let b0 = bias?[j] ?? 0, b1 = bias?[j &+ 1] ?? 0, b2 = bias?[j &+ 2] ?? 0
        // Past the last tile this points beyond W; a prefetch never faults.
        let next = UnsafeRawPointer(w2 + k)
        var ahead = 0
        @inline(__always) func prefetchNext() {
            rein_prefetch(next + ahead)
            if second { rein_prefetch(next + (ahead &+ 64)) }
            if third { rein_prefetch(next + (ahead &+ 128)) }
            ahead &+= stride
        }
        var r = 0
        while r &+ 4 <= m {
            let x0 = X + r &* ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
            var a00 = V(), a01 = V(), a02 = V(), a10 = V(), a11 = V(), a12 = V()
            var a20 = V(), a21 = V(), a22 = V(), a30 = V(), a31 = V(), a32 = V()
            var i = 0
            while i < kv {
                prefetchNext()
                let v0 = loadVector(w0 + i, V.self), v1 = loadVector(w1 + i, V.self), v2 = loadVector(w2 + i, V.self)
                var u = loadVector(x0 + i, V.self)
                a00 = a00.addingProduct(u, v0); a01 = a01.addingProduct(u, v1); a02 = a02.addingProduct(u, v2)
                u = loadVector(x1 + i, V.self)
                a10 = a10.addingProduct(u, v0); a11 = a11.addingProduct(u, v1); a12 = a12.addingProduct(u, v2)
                u = loadVector(x2 + i, V.self)
                a20 = a20.addingProduct(u, v0); a21 = a21.addingProduct(u, v1); a22 = a22.addingProduct(u, v2)
                u = loadVector(x3 + i, V.self)
                a30 = a30.addingProduct(u, v0); a31 = a31.addingProduct(u, v1); a32 = a32.addingProduct(u, v2)
                i &+= L
            }
            let y0 = Y + (r &* ldy &+ j), y1 = y0 + ldy, y2 = y1 + ldy, y3 = y2 + ldy
            y0[0] = laneSum(a00) + dotTail(x0, w0, from: kv, to: k) + b0
            y0[1] = laneSum(a01) + dotTail(x0, w1, from: kv, to: k) + b1
            y0[2] = laneSum(a02) + dotTail(x0, w2, from: kv, to: k) + b2
            y1[0] = laneSum(a10) + dotTail(x1, w0, from: kv, to: k) + b0
            y1[1] = laneSum(a11) + dotTail(x1, w1, from: kv, to: k) + b1
            y1[2] = laneSum(a12) + dotTail(x1, w2, from: kv, to: k) + b2
            y2[0] = laneSum(a20) + dotTail(x2, w0, from: kv, to: k) + b0
            y2[1] = laneSum(a21) + dotTail(x2, w1, from: kv, to: k) + b1
            y2[2] = laneSum(a22) + dotTail(x2, w2, from: kv, to: k) + b2
            y3[0] = laneSum(a30) + dotTail(x3, w0, from: kv, to: k) + b0
            y3[1] = laneSum(a31) + dotTail(x3, w1, from: kv, to: k) + b1
            y3[2] = laneSum(a32) + dotTail(x3, w2, from: kv, to: k) + b2
            r &+= 4
        }
        if r &+ 2 <= m {
            let x0 = X + r &* ldx, x1 = x0 + ldx
            var a00 = V(), a01 = V(), a02 = V(), a10 = V(), a11 = V(), a12 = V()
            var i = 0
            while i < kv {
                prefetchNext()
                let v0 = loadVector(w0 + i, V.self), v1 = loadVector(w1 + i, V.self), v2 = loadVector(w2 + i, V.self)
                var u = loadVector(x0 + i, V.self)
                a00 = a00.addingProduct(u, v0); a01 = a01.addingProduct(u, v1); a02 = a02.addingProduct(u, v2)
                u = loadVector(x1 + i, V.self)
                a10 = a10.addingProduct(u, v0); a11 = a11.addingProduct(u, v1); a12 = a12.addingProduct(u, v2)
                i &+= L
            }
            let y0 = Y + (r &* ldy &+ j), y1 = y0 + ldy
            y0[0] = laneSum(a00) + dotTail(x0, w0, from: kv, to: k) + b0
            y0[1] = laneSum(a01) + dotTail(x0, w1, from: kv, to: k) + b1
            y0[2] = laneSum(a02) + dotTail(x0, w2, from: kv, to: k) + b2
            y1[0] = laneSum(a10) + dotTail(x1, w0, from: kv, to: k) + b0
            y1[1] = laneSum(a11) + dotTail(x1, w1, from: kv, to: k) + b1
            y1[2] = laneSum(a12) + dotTail(x1, w2, from: kv, to: k) + b2
            r &+= 2
        }
        if r < m {
            let x0 = X + r &* ldx
            // Two accumulators per weight row: one row of X gives too few independent FMAs otherwise.
            var a0 = V(), a1 = V(), a2 = V(), c0 = V(), c1 = V(), c2 = V()
            var i = 0
            while i &+ 2 &* L <= kv {
                prefetchNext()
                let u = loadVector(x0 + i, V.self), t = loadVector(x0 + (i &+ L), V.self)
                a0 = a0.addingProduct(u, loadVector(w0 + i, V.self)); c0 = c0.addingProduct(t, loadVector(w0 + (i &+ L), V.self))
                a1 = a1.addingProduct(u, loadVector(w1 + i, V.self)); c1 = c1.addingProduct(t, loadVector(w1 + (i &+ L), V.self))
                a2 = a2.addingProduct(u, loadVector(w2 + i, V.self)); c2 = c2.addingProduct(t, loadVector(w2 + (i &+ L), V.self))
                prefetchNext()
                i &+= 2 &* L
            }
            if i < kv {
                let u = loadVector(x0 + i, V.self)
                a0 = a0.addingProduct(u, loadVector(w0 + i, V.self))
                a1 = a1.addingProduct(u, loadVector(w1 + i, V.self))
                a2 = a2.addingProduct(u, loadVector(w2 + i, V.self))
            }
            let y0 = Y + (r &* ldy &+ j)
            y0[0] = laneSum(a0 + c0) + dotTail(x0, w0, from: kv, to: k) + b0
            y0[1] = laneSum(a1 + c1) + dotTail(x0, w1, from: kv, to: k) + b1
            y0[2] = laneSum(a2 + c2) + dotTail(x0, w2, from: kv, to: k) + b2
        }
        j &+= 3
    }
    // The last n mod 3 columns, one weight row at a time.
    while j < j1 {
        let w0 = W + j &* k
        let b0 = bias?[j] ?? 0
        for r in 0..<m {
            let x0 = X + r &* ldx
            var a0 = V()
            var i = 0
            while i < kv { a0 = a0.addingProduct(loadVector(x0 + i, V.self), loadVector(w0 + i, V.self)); i &+= L }
            Y[r &* ldy &+ j] = laneSum(a0) + dotTail(x0, w0, from: kv, to: k) + b0
        }
        j &+= 1
    }
}

/// W `[k, n]`, columns j0..<j1: each output row is a sum of weight rows scaled by X's entries.
/// Tiles of 2 vectors of columns × 4 X rows (8 accumulators), one weight row segment per step; the
/// k × 2L panel stays in L2 while the next rows of X pass over it.
@inline(__always)
func skinnyInputMajor<V: SIMD>(_: V.Type, m: Int, n: Int, k: Int, _ X: UnsafePointer<Float>, _ ldx: Int,
                               _ W: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               _ Y: UnsafeMutablePointer<Float>, _ ldy: Int, columns j0: Int, _ j1: Int)
where V.Scalar == Float {
    let L = V.scalarCount
    var j = j0
    while j &+ 2 &* L <= j1 {
        let wj = W + j
        let c0 = bias.map { loadVector($0 + j, V.self) } ?? V(), c1 = bias.map { loadVector($0 + (j &+ L), V.self) } ?? V()
        var r = 0
        while r &+ 4 <= m {
            let x0 = X + r &* ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
            var a00 = c0, a01 = c1, a10 = c0, a11 = c1, a20 = c0, a21 = c1, a30 = c0, a31 = c1
            var i = 0
            while i < k {
                let wi = wj + i &* n
                let v0 = loadVector(wi, V.self), v1 = loadVector(wi + L, V.self)
                let u0 = V(repeating: x0[i]), u1 = V(repeating: x1[i]), u2 = V(repeating: x2[i]), u3 = V(repeating: x3[i])
                a00 = a00.addingProduct(u0, v0); a01 = a01.addingProduct(u0, v1)
                a10 = a10.addingProduct(u1, v0); a11 = a11.addingProduct(u1, v1)
                a20 = a20.addingProduct(u2, v0); a21 = a21.addingProduct(u2, v1)
                a30 = a30.addingProduct(u3, v0); a31 = a31.addingProduct(u3, v1)
                i &+= 1
            }
            storeVector(a00, Y + (r &* ldy &+ j)); storeVector(a01, Y + (r &* ldy &+ j &+ L))
            storeVector(a10, Y + ((r &+ 1) &* ldy &+ j)); storeVector(a11, Y + ((r &+ 1) &* ldy &+ j &+ L))
            storeVector(a20, Y + ((r &+ 2) &* ldy &+ j)); storeVector(a21, Y + ((r &+ 2) &* ldy &+ j &+ L))
            storeVector(a30, Y + ((r &+ 3) &* ldy &+ j)); storeVector(a31, Y + ((r &+ 3) &* ldy &+ j &+ L))
            r &+= 4
        }
        while r < m {
            let x0 = X + r &* ldx
            var a00 = c0, a01 = c1
            var i = 0
            while i < k {
                let wi = wj + i &* n
                let u0 = V(repeating: x0[i])
                a00 = a00.addingProduct(u0, loadVector(wi, V.self)); a01 = a01.addingProduct(u0, loadVector(wi + L, V.self))
                i &+= 1
            }
            storeVector(a00, Y + (r &* ldy &+ j)); storeVector(a01, Y + (r &* ldy &+ j &+ L))
            r &+= 1
        }
        j &+= 2 &* L
    }
    // The last columns (fewer than 2L), one at a time with a strided walk down W.
    while j < j1 {
        let b0 = bias?[j] ?? 0
        for r in 0..<m {
            let x0 = X + r &* ldx
            var s: Float = 0
            var i = 0
            while i < k { s += x0[i] * W[i &* n &+ j]; i &+= 1 }
            Y[r &* ldy &+ j] = s + b0
        }
        j &+= 1
    }
}

@inline(__always)
func storeVector<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}

/// x · Wᵀ + bias for inference, x `[..., In]`, W `[Out, In]`, bias `[Out]`: at most
/// ``SkinnyMatmul/maxRows`` rows (a decoding step) go through the few-row kernel, more rows, and any
/// product whose gradient would be recorded, through ``linear(_:weight:bias:)``.
public func inferenceLinear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2 && x.lastDim == weight.shape[1] && (bias == nil || bias!.count == weight.shape[0]),
                 "inferenceLinear: x \(x.shape), weight \(weight.shape), bias \(bias?.shape ?? [])")
    let In = weight.shape[1], Out = weight.shape[0], rows = x.count / Swift.max(In, 1)
    let records = Autograd.isEnabled && (x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)
    guard !records, SkinnyMatmul.applies(rows: rows, k: In, n: Out) else { return linear(x, weight: weight, bias: bias) }
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [Out])
    skinnyMatmul(m: rows, n: Out, k: In, x.data, ldx: In, weight.data, layout: .outputMajor, bias: bias?.data, out.data, ldy: Out)
    return out
}
