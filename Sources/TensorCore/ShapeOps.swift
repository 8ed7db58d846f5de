// Ops that move elements: embedding gather, concat, slice, permute, and dropout.

/// Rows of `weight` `[V, C]` picked by `ids`: `[ids.count, C]`. Backward scatter-adds into the rows.
public func embedding(_ weight: Tensor, ids: [Int32]) -> Tensor {
    precondition(weight.rank == 2, "embedding weight must be [V, C], got \(weight.shape)")
    let V = weight.shape[0], C = weight.shape[1], N = ids.count
    let out = Tensor(uninitialized: [N, C])
    let wp = weight.data, op = out.data
    ids.withUnsafeBufferPointer { ip in
        nonisolated(unsafe) let ip = ip
        parallelFor(N, grain: rowGrain(C)) { _, lo, hi in
            for r in lo..<hi {
                let id = Int(ip[r])
                precondition(id >= 0 && id < V, "embedding: id \(id) outside 0..<\(V)")
                (op + r &* C).update(from: wp + id &* C, count: C)
            }
        }
    }
    record(out, inputs: [weight]) { _, g in
        // Serial over rows: two rows may hit the same id.
        let gp = g.data
        let dw: UnsafeMutablePointer<Float>
        if let existing = weight.grad { dw = existing.data } else {
            let fresh = Tensor(shape: weight.shape, repeating: 0)
            weight.grad = fresh
            dw = fresh.data
        }
        for r in 0..<N {
            let d = dw + Int(ids[r]) &* C, s = gp + r &* C
            var j = 0
            while j < C { d[j] += s[j]; j &+= 1 }
        }
    }
    return out
}

/// Normalizes a possibly negative axis.
@inline(__always)
func resolveAxis(_ axis: Int, rank: Int, _ op: String) -> Int {
    let ax = axis < 0 ? rank + axis : axis
    precondition(ax >= 0 && ax < rank, "\(op): axis \(axis) out of range for rank \(rank)")
    return ax
}

/// Copies `rows` blocks of `width` floats between strided buffers (dst += src when accumulating).
@inline(__always)
func copyBlocks(_ src: UnsafePointer<Float>, srcStride: Int, _ dst: UnsafeMutablePointer<Float>,
                dstStride: Int, rows: Int, width: Int, accumulate: Bool) {
    for r in 0..<rows {
        let s = src + r &* srcStride, d = dst + r &* dstStride
        if accumulate {
            var j = 0
            while j < width { d[j] += s[j]; j &+= 1 }
        } else {
            d.update(from: s, count: width)
        }
    }
}

/// Joins tensors along `axis`; all other dimensions must agree.
public func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concat of no tensors")
    let first = tensors[0]
    let ax = resolveAxis(axis, rank: first.rank, "concat")
    for t in tensors {
        precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                     "concat: shapes \(tensors.map(\.shape)) differ outside axis \(axis)")
    }
    let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
    var shape = first.shape
    shape[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
    let out = Tensor(uninitialized: shape)
    let outWidth = shape[ax] * inner
    var column = 0
    for t in tensors {
        let w = t.shape[ax] * inner
        copyBlocks(t.data, srcStride: w, out.data + column, dstStride: outWidth, rows: outer, width: w,
                   accumulate: false)
        column += w
    }
    record(out, inputs: tensors) { _, g in
        var column = 0
        for t in tensors {
            let w = t.shape[ax] * inner
            if t.requiresGrad {
                let (d, acc) = t.gradBuffer()
                copyBlocks(g.data + column, srcStride: outWidth, d, dstStride: w, rows: outer, width: w,
                           accumulate: acc)
            }
            column += w
        }
    }
    return out
}

extension Tensor {
    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = resolveAxis(axis, rank: rank, "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice \(range) out of 0..<\(shape[ax]) on axis \(axis) of \(shape)")
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        var outShape = shape
        outShape[ax] = range.count
        let out = Tensor(uninitialized: outShape)
        let srcWidth = shape[ax] * inner, w = range.count * inner, start = range.lowerBound * inner
        copyBlocks(data + start, srcStride: srcWidth, out.data, dstStride: w, rows: outer, width: w,
                   accumulate: false)
        record(out, inputs: [self]) { _, g in
            let fresh = self.grad == nil
            let (d, acc) = self.gradBuffer()
            if fresh { d.update(repeating: 0, count: self.count) }
            copyBlocks(g.data, srcStride: w, d + start, dstStride: srcWidth, rows: outer, width: w,
                       accumulate: acc || fresh)
        }
        return out
    }

    /// Dimensions reordered: output dimension i is input dimension `dims[i]` (a copy).
    public func permuted(_ dims: [Int]) -> Tensor {
        precondition(dims.sorted() == Array(0..<rank), "permute \(dims) is not a permutation of rank \(rank)")
        let outShape = dims.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        permuteCopy(data, shape: shape, dims: dims, into: out.data, accumulate: false)
        record(out, inputs: [self]) { _, g in
            var inverse = [Int](repeating: 0, count: dims.count)
            for (i, d) in dims.enumerated() { inverse[d] = i }
            let (d, acc) = self.gradBuffer()
            permuteCopy(g.data, shape: outShape, dims: inverse, into: d, accumulate: acc)
        }
        return out
    }

    /// Swaps two dimensions (a copy).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var dims = Array(0..<rank)
        dims.swapAt(resolveAxis(a, rank: rank, "transpose"), resolveAxis(b, rank: rank, "transpose"))
        return permuted(dims)
    }
}

/// dst (shape `dims.map { shape[$0] }`) = src (shape `shape`) permuted. The innermost output
/// dimension is copied in a tight loop with the matching source stride.
func permuteCopy(_ src: UnsafePointer<Float>, shape: [Int], dims: [Int], into dst: UnsafeMutablePointer<Float>,
                 accumulate: Bool) {
    let rank = shape.count
    let total = shape.reduce(1, *)
    guard total > 0 else { return }
    if rank == 0 { dst[0] = accumulate ? dst[0] + src[0] : src[0]; return }
    var srcStrides = [Int](repeating: 1, count: rank)
    for i in stride(from: rank - 2, through: 0, by: -1) { srcStrides[i] = srcStrides[i + 1] * shape[i + 1] }
    let outShape = dims.map { shape[$0] }
    let stridesOut = dims.map { srcStrides[$0] }   // source stride of each output dimension
    let inner = outShape[rank - 1], innerStride = stridesOut[rank - 1]
    var index = [Int](repeating: 0, count: rank)
    var o = 0
    while o < total {
        var s = 0
        for i in 0..<(rank - 1) { s += index[i] * stridesOut[i] }
        let d = dst + o, sp = src + s
        var j = 0
        if accumulate {
            while j < inner { d[j] += sp[j &* innerStride]; j &+= 1 }
        } else {
            while j < inner { d[j] = sp[j &* innerStride]; j &+= 1 }
        }
        o += inner
        var k = rank - 2
        while k >= 0 {
            index[k] += 1
            if index[k] < outShape[k] { break }
            index[k] = 0
            k -= 1
        }
    }
}

/// Zeroes each element with probability `p` and scales the rest by 1/(1-p) (inverted dropout).
/// Identity when `p == 0`; the mask comes from `rng`, so the same seed drops the same elements.
public func dropout(_ x: Tensor, p: Float, rng: inout RNG) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
    guard p > 0 else { return x }
    let mask = Tensor(uninitialized: x.shape)
    let mp = mask.data
    let keep = 1 / (1 - p)
    for i in 0..<x.count { mp[i] = rng.uniform() < p ? 0 : keep }
    return x * mask
}
