import Foundation
import RealModule

// Fused scaled-dot-product attention with a causal mask, a key padding mask and grouped-query
// heads, plus rotary position embeddings and a KV cache for decoding.
//
// Layout: q is [B, T, Hq·D] and k, v are [B, S, Hkv·D], exactly as the projections produce them,
// so heads are read with a row stride (lda = H·D) and never copied. Queries are the last T of the
// S key positions: query i sits at position S - T + i (T == S in training, T < S when decoding).
// Per (batch, head) the kernel is: P = softmax(scale · Q Kᵀ + mask) (one sgemm, a row softmax),
// O = P V (one sgemm); the backward is four sgemms and a row pass. All matmuls go to BLAS.

/// The attention problem for one call: dims, strides and masks.
struct AttentionShape {
    let B: Int, T: Int, S: Int, Hq: Int, Hkv: Int, D: Int
    /// Floats between consecutive batches of k and v (S·Hkv·D, or more for a KV cache).
    let kvBatchStride: Int
    let causal: Bool
    let scale: Float
    var qRow: Int { Hq &* D }
    var kvRow: Int { Hkv &* D }
    var group: Int { Hq / Hkv }

    /// Number of leading keys row `i` of the scores may see (causal limit).
    @inline(__always) func visible(_ i: Int) -> Int { causal ? S &- T &+ i &+ 1 : S }
}

/// Masks one score row in place and turns it into probabilities. Keys at or beyond `limit`, and
/// keys whose `keyMask` entry is 0, get probability 0; a row that sees no key is all zeros.
@inline(__always)
func maskedSoftmaxRow(_ row: UnsafeMutablePointer<Float>, S: Int, limit: Int, keyMask: UnsafePointer<Float>?) {
    var m = -Float.infinity
    var j = 0
    if let km = keyMask {
        while j < limit { if km[j] != 0 { m = Swift.max(m, row[j]) }; j &+= 1 }
    } else {
        m = rowMax(row, limit)
    }
    guard m > -Float.infinity else {
        row.update(repeating: 0, count: S)
        return
    }
    var s: Float = 0
    j = 0
    if let km = keyMask {
        while j < limit { let e = km[j] != 0 ? fastExp(row[j] - m) : 0; row[j] = e; s = Relaxed.sum(s, e); j &+= 1 }
    } else {
        while j < limit { let e = fastExp(row[j] - m); row[j] = e; s = Relaxed.sum(s, e); j &+= 1 }
    }
    let inv = 1 / s
    j = 0
    while j < limit { row[j] *= inv; j &+= 1 }
    if limit < S { (row + limit).update(repeating: 0, count: S &- limit) }
}

/// Query rows per call below which inference attention skips BLAS: decoding steps are
/// matrix-vector work, where B·H tiny `sgemm` calls cost more in dispatch than in arithmetic.
let directAttentionMaxRows = 4

/// Forward for all (batch, head) pairs. `probs` receives P for each pair ([B, Hq, T, S]) when the
/// backward will need it; otherwise one [T, S] scratch is reused.
func attentionForward(_ sh: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                      v: UnsafePointer<Float>, keyMask: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                      probs: UnsafeMutablePointer<Float>?) {
    let (T, S, D) = (sh.T, sh.S, sh.D)
    if probs == nil && T <= directAttentionMaxRows {
        attentionForwardDirect(sh, q: q, k: k, v: v, keyMask: keyMask, out: out)
        return
    }
    let scratch = probs == nil ? Tensor(uninitialized: [T, S]) : nil
    for b in 0..<sh.B {
        let km = keyMask.map { $0 + b &* S }
        for h in 0..<sh.Hq {
            let kvh = h / sh.group
            let qp = q + (b &* T &* sh.qRow &+ h &* D)
            let kp = k + (b &* sh.kvBatchStride &+ kvh &* D)
            let vp = v + (b &* sh.kvBatchStride &+ kvh &* D)
            let p = probs.map { $0 + (b &* sh.Hq &+ h) &* T &* S } ?? scratch!.data
            sgemm(false, true, T, S, D, alpha: sh.scale, qp, sh.qRow, kp, sh.kvRow, beta: 0, p, S)
            parallelFor(T, grain: rowGrain(S)) { _, lo, hi in
                for i in lo..<hi { maskedSoftmaxRow(p + i &* S, S: S, limit: sh.visible(i), keyMask: km) }
            }
            sgemm(false, false, T, D, S, p, S, vp, sh.kvRow, beta: 0, out + (b &* T &* sh.qRow &+ h &* D), sh.qRow)
        }
    }
}

/// Inference attention for a few query rows: per (batch, head) pair, dot products against each key,
/// a masked softmax and a weighted sum of values, parallel over the pairs.
func attentionForwardDirect(_ sh: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                            v: UnsafePointer<Float>, keyMask: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
    let (T, S, D) = (sh.T, sh.S, sh.D)
    let pairs = sh.B &* sh.Hq
    let chunks = workerCount(pairs, grain: Swift.max(1, 4096 / Swift.max(S &* D, 1)))
    let scratch = Tensor(uninitialized: [chunks, S])
    let sp = scratch.data
    parallelFor(pairs, grain: Swift.max(1, 4096 / Swift.max(S &* D, 1))) { c, lo, hi in
        let row = sp + c &* S
        for pair in lo..<hi {
            let b = pair / sh.Hq, h = pair % sh.Hq, kvh = h / sh.group
            let kp = k + (b &* sh.kvBatchStride &+ kvh &* D), vp = v + (b &* sh.kvBatchStride &+ kvh &* D)
            let km = keyMask.map { $0 + b &* S }
            for i in 0..<T {
                let qi = q + (b &* T &* sh.qRow &+ i &* sh.qRow &+ h &* D)
                let limit = sh.visible(i)
                var j = 0
                while j < limit { row[j] = sh.scale * relaxedDot(qi, kp + j &* sh.kvRow, D); j &+= 1 }
                maskedSoftmaxRow(row, S: S, limit: limit, keyMask: km)
                let o = out + (b &* T &* sh.qRow &+ i &* sh.qRow &+ h &* D)
                o.update(repeating: 0, count: D)
                j = 0
                while j < limit {
                    let pj = row[j]
                    if pj != 0 {
                        let vj = vp + j &* sh.kvRow
                        var d = 0
                        while d < D { o[d] += pj * vj[d]; d &+= 1 }
                    }
                    j &+= 1
                }
            }
        }
    }
}

/// Causal (or full) multi-head attention with grouped-query heads and an optional key padding mask.
///
/// - Parameters:
///   - q: `[B, T, heads·D]`; k, v: `[B, S, kvHeads·D]` with S >= T (queries are the last T positions).
///   - heads, kvHeads: query and key/value head counts; `heads` must be a multiple of `kvHeads`.
///   - keyMask: B·S entries, 1 for a real key and 0 for padding (nil: all real).
///   - causal: query i sees keys 0...S-T+i.
///   - scale: defaults to 1/√D.
/// - Returns: `[B, T, heads·D]`.
public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, keyMask: [Float]? = nil,
                      causal: Bool = true, scale: Float? = nil) -> Tensor {
    precondition(q.rank == 3 && k.rank == 3 && v.rank == 3 && k.shape == v.shape,
                 "attention: q \(q.shape), k \(k.shape), v \(v.shape)")
    precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0, "attention: \(heads) heads over \(kvHeads) kv heads")
    let B = q.shape[0], T = q.shape[1], S = k.shape[1]
    let D = q.shape[2] / heads
    precondition(D * heads == q.shape[2] && k.shape[0] == B && k.shape[2] == kvHeads * D && S >= T,
                 "attention: q \(q.shape) with \(heads) heads does not match k \(k.shape) with \(kvHeads)")
    precondition(keyMask == nil || keyMask!.count == B * S, "attention: key mask of \(keyMask!.count) for \(B)x\(S)")
    let sh = AttentionShape(B: B, T: T, S: S, Hq: heads, Hkv: kvHeads, D: D, kvBatchStride: S * kvHeads * D,
                            causal: causal, scale: scale ?? 1 / Float(D).squareRoot())
    let out = Tensor(uninitialized: q.shape)
    let needsGrad = Autograd.isEnabled && (q.requiresGrad || k.requiresGrad || v.requiresGrad)
    let probs = needsGrad ? Tensor(uninitialized: [B, heads, T, S]) : nil
    let maskTensor = keyMask.map { Tensor(shape: [B, S], values: $0) }
    attentionForward(sh, q: q.data, k: k.data, v: v.data, keyMask: maskTensor?.data, out: out.data,
                     probs: probs?.data)
    guard let probs else { return out }
    record(out, inputs: [q, k, v]) { _, g in
        attentionBackward(sh, q: q, k: k, v: v, probs: probs.data, gradOut: g.data)
    }
    return out
}

/// Backward for all (batch, head) pairs; accumulates into q, k and v's gradients.
func attentionBackward(_ sh: AttentionShape, q: Tensor, k: Tensor, v: Tensor, probs: UnsafePointer<Float>,
                       gradOut: UnsafePointer<Float>) {
    let (T, S, D) = (sh.T, sh.S, sh.D)
    // k and v gradients sum over the query heads of a group: start from zero, always add.
    func zeroedGrad(_ t: Tensor) -> UnsafeMutablePointer<Float>? {
        guard t.requiresGrad else { return nil }
        let fresh = t.grad == nil
        let (d, _) = t.gradBuffer()
        if fresh { d.update(repeating: 0, count: t.count) }
        return d
    }
    let dq: UnsafeMutablePointer<Float>?, qAcc: Bool
    if q.requiresGrad { (dq, qAcc) = q.gradBuffer() } else { (dq, qAcc) = (nil, false) }
    let dk = zeroedGrad(k), dv = zeroedGrad(v)
    let dScores = Tensor(uninitialized: [T, S])
    let ds = dScores.data
    let qd = q.data, kd = k.data, vd = v.data
    for b in 0..<sh.B {
        for h in 0..<sh.Hq {
            let kvh = h / sh.group
            let qOff = b &* T &* sh.qRow &+ h &* D
            let kvOff = b &* sh.kvBatchStride &+ kvh &* D
            let p = probs + (b &* sh.Hq &+ h) &* T &* S
            let go = gradOut + qOff
            if let dv {
                // dV += Pᵀ dO
                sgemm(true, false, S, D, T, p, S, go, sh.qRow, beta: 1, dv + kvOff, sh.kvRow)
            }
            guard dq != nil || dk != nil else { continue }
            // dP = dO Vᵀ, then dS = P ⊙ (dP - Σ dP ⊙ P) row by row.
            sgemm(false, true, T, S, D, go, sh.qRow, vd + kvOff, sh.kvRow, beta: 0, ds, S)
            parallelFor(T, grain: rowGrain(S)) { _, lo, hi in
                for i in lo..<hi {
                    let pr = p + i &* S, dr = ds + i &* S
                    let n = sh.visible(i)
                    let dot = relaxedDot(pr, dr, n)
                    var j = 0
                    while j < n { dr[j] = pr[j] * (dr[j] - dot); j &+= 1 }
                    if n < S { (dr + n).update(repeating: 0, count: S &- n) }
                }
            }
            if let dq {
                // dQ = scale · dS K
                sgemm(false, false, T, D, S, alpha: sh.scale, ds, S, kd + kvOff, sh.kvRow,
                      beta: qAcc ? 1 : 0, dq + qOff, sh.qRow)
            }
            if let dk {
                // dK += scale · dSᵀ Q
                sgemm(true, false, S, D, T, alpha: sh.scale, ds, S, qd + qOff, sh.qRow, beta: 1, dk + kvOff, sh.kvRow)
            }
        }
    }
}

// MARK: KV cache

/// Keys and values of past positions for decoding, one buffer per layer: `[B, capacity, Hkv·D]`.
/// Inference only: nothing recorded for autodiff.
public final class KVCache {
    /// Batch size.
    public let batch: Int
    /// Most positions the cache holds.
    public let capacity: Int
    /// Floats per position (Hkv·D).
    public let rowWidth: Int
    private var keys: [Tensor]
    private var vals: [Tensor]
    /// Positions stored so far (the same for every layer after a full forward).
    public private(set) var lengths: [Int]

    /// An empty cache for `layers` layers.
    public init(layers: Int, batch: Int, capacity: Int, kvHeads: Int, headDim: Int) {
        self.batch = batch
        self.capacity = capacity
        self.rowWidth = kvHeads * headDim
        keys = (0..<layers).map { _ in Tensor(uninitialized: [batch, capacity, kvHeads * headDim]) }
        vals = (0..<layers).map { _ in Tensor(uninitialized: [batch, capacity, kvHeads * headDim]) }
        lengths = Array(repeating: 0, count: layers)
    }

    /// Positions stored in layer 0.
    public var length: Int { lengths.first ?? 0 }

    /// Forgets every position.
    public func reset() { for i in lengths.indices { lengths[i] = 0 } }

    /// Appends `k`, `v` (`[B, T, Hkv·D]`) to `layer` and attends `q` (`[B, T, Hq·D]`) over all stored
    /// positions, causally. `keyMask` has B·(length after append) entries (1 real, 0 padding).
    public func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int,
                       keyMask: [Float]? = nil, scale: Float? = nil) -> Tensor {
        let B = q.shape[0], T = q.shape[1], D = q.shape[2] / heads
        precondition(B == batch && k.shape == [B, T, rowWidth] && v.shape == k.shape && kvHeads * D == rowWidth,
                     "KVCache.attend: q \(q.shape), k \(k.shape) for a cache of [\(batch), \(capacity), \(rowWidth)]")
        let start = lengths[layer], S = start + T
        precondition(S <= capacity, "KV cache full: \(S) positions for a capacity of \(capacity)")
        precondition(keyMask == nil || keyMask!.count == B * S, "KVCache.attend: key mask of \(keyMask!.count) for \(B)x\(S)")
        let stride = capacity * rowWidth
        for b in 0..<B {
            (keys[layer].data + b * stride + start * rowWidth).update(from: k.data + b * T * rowWidth, count: T * rowWidth)
            (vals[layer].data + b * stride + start * rowWidth).update(from: v.data + b * T * rowWidth, count: T * rowWidth)
        }
        lengths[layer] = S
        let sh = AttentionShape(B: B, T: T, S: S, Hq: heads, Hkv: kvHeads, D: D, kvBatchStride: stride,
                                causal: true, scale: scale ?? 1 / Float(D).squareRoot())
        let out = Tensor(uninitialized: q.shape)
        let maskTensor = keyMask.map { Tensor(shape: [B, S], values: $0) }
        attentionForward(sh, q: q.data, k: keys[layer].data, v: vals[layer].data, keyMask: maskTensor?.data,
                         out: out.data, probs: nil)
        return out
    }
}

// Slot operations for continuous batching: a decoding loop moves sequences between caches (a
// prompt prefilled once, copied to the rows that sample from it; survivors compacted into a
// smaller cache) and sets the common length by hand.
extension KVCache {
    /// Copies `count` positions of row `srcRow` of `source`, from position `srcStart`, into row
    /// `dstRow` of this cache from position `dstStart`, in every layer. The caches must have the
    /// same layers and row width; `source` may be this cache (the regions may overlap).
    public func copyPositions(from source: KVCache, srcRow: Int, srcStart: Int, count: Int, dstRow: Int, dstStart: Int) {
        precondition(source.rowWidth == rowWidth && source.keys.count == keys.count,
                     "KVCache.copyPositions: caches of different shapes")
        precondition(srcRow >= 0 && srcRow < source.batch && dstRow >= 0 && dstRow < batch && count >= 0
                     && srcStart >= 0 && srcStart + count <= source.capacity && dstStart >= 0 && dstStart + count <= capacity,
                     "KVCache.copyPositions: rows \(srcRow) -> \(dstRow), positions \(srcStart) -> \(dstStart) x \(count) out of range")
        guard count > 0 else { return }
        let w = rowWidth, n = count * w * MemoryLayout<Float>.stride
        let srcOffset = (srcRow * source.capacity + srcStart) * w, dstOffset = (dstRow * capacity + dstStart) * w
        for layer in keys.indices {
            memmove(keys[layer].data + dstOffset, source.keys[layer].data + srcOffset, n)
            memmove(vals[layer].data + dstOffset, source.vals[layer].data + srcOffset, n)
        }
    }

    /// Sets the number of stored positions of every layer (positions beyond what was written hold
    /// garbage: mask them out).
    public func setLength(_ length: Int) {
        precondition(length >= 0 && length <= capacity, "KVCache.setLength: \(length) for a capacity of \(capacity)")
        for i in lengths.indices { lengths[i] = length }
    }
}

// MARK: Rotary position embeddings

/// How a head's dimensions pair up for rotation.
public enum RoPEConvention: Sendable {
    /// Hugging Face Llama: dimension i pairs with i + D/2 (`rotate_half`).
    case rotateHalf
    /// The original RoPE and GGUF's layout: dimensions 2i and 2i+1 pair up.
    case interleaved
}

/// cos and sin of position · θ^(-2i/D) for positions 0..<maxPositions and i in 0..<D/2.
public final class RoPETable: @unchecked Sendable {
    /// Head dimension D.
    public let headDim: Int
    /// Positions covered.
    public let maxPositions: Int
    let cos: [Float]
    let sin: [Float]

    /// Precomputes the table (in Double, rounded once to Float).
    public init(theta: Double, headDim: Int, maxPositions: Int) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension, got \(headDim)")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for i in 0..<half {
            let invFreq = Foundation.pow(theta, -Double(2 * i) / Double(headDim))
            for p in 0..<maxPositions {
                let angle = Double(p) * invFreq
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }
}

/// Rotates each head of `x` (`[B, T, H·D]`) by its token's position (`positions`: B·T ids, e.g.
/// cumsum(attention mask) - 1 under left padding).
public func rope(_ x: Tensor, positions: [Int32], heads: Int, table: RoPETable,
                 convention: RoPEConvention = .rotateHalf) -> Tensor {
    let D = table.headDim
    precondition(x.lastDim == heads * D, "rope: last dimension \(x.lastDim) is not \(heads) heads of \(D)")
    let rows = x.count / x.lastDim
    precondition(positions.count == rows, "rope: \(positions.count) positions for \(rows) tokens")
    let out = Tensor(uninitialized: x.shape)
    rotate(x.data, out.data, positions: positions, rows: rows, heads: heads, table: table,
           convention: convention, inverse: false, accumulate: false)
    record(out, inputs: [x]) { _, g in
        let (dx, acc) = x.gradBuffer()
        rotate(g.data, dx, positions: positions, rows: rows, heads: heads, table: table,
               convention: convention, inverse: true, accumulate: acc)
    }
    return out
}

/// y = R(pos)·x per pair (R(-pos) when `inverse`, which is the backward).
func rotate(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, positions: [Int32], rows: Int,
            heads: Int, table: RoPETable, convention: RoPEConvention, inverse: Bool, accumulate: Bool) {
    let D = table.headDim, half = D / 2, width = heads * D
    let sign: Float = inverse ? -1 : 1
    table.cos.withUnsafeBufferPointer { cb in
        table.sin.withUnsafeBufferPointer { sb in
            positions.withUnsafeBufferPointer { pb in
                nonisolated(unsafe) let (cp, sp, pp) = (cb.baseAddress!, sb.baseAddress!, pb)
                parallelFor(rows, grain: rowGrain(width)) { _, lo, hi in
                    for r in lo..<hi {
                        let pos = Int(pp[r])
                        precondition(pos >= 0 && pos < table.maxPositions,
                                     "rope: position \(pos) outside the table's 0..<\(table.maxPositions)")
                        let c = cp + pos &* half, s = sp + pos &* half
                        for h in 0..<heads {
                            let xi = x + (r &* width &+ h &* D), yi = y + (r &* width &+ h &* D)
                            let (stride, pairStep) = convention == .rotateHalf ? (1, half) : (2, 1)
                            var i = 0
                            while i < half {
                                let a = i &* stride, b = a &+ pairStep
                                let x0 = xi[a], x1 = xi[b], ci = c[i], si = sign * s[i]
                                let y0 = x0 * ci - x1 * si, y1 = x1 * ci + x0 * si
                                if accumulate { yi[a] += y0; yi[b] += y1 } else { yi[a] = y0; yi[b] = y1 }
                                i &+= 1
                            }
                        }
                    }
                }
            }
        }
    }
}
