import COpenBLAS

/// C (M×N, row stride ldc) = alpha · op(A) · op(B) + beta · C, row-major, through `cblas_sgemm`
/// (`cblas_sgemv` when M or N is 1).
/// op(A) is M×K (A stored K×M when `transA`), op(B) is K×N (B stored N×K when `transB`).
@inline(__always)
func sgemm(_ transA: Bool, _ transB: Bool, _ M: Int, _ N: Int, _ K: Int, alpha: Float = 1,
           _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
           beta: Float, _ C: UnsafeMutablePointer<Float>, _ ldc: Int) {
    guard M > 0 && N > 0 else { return }
    if K == 0 {
        // BLAS leaves C untouched when K == 0 only if beta == 1; make the empty sum explicit.
        if beta == 0 { for r in 0..<M { (C + r &* ldc).update(repeating: 0, count: N) } }
        return
    }
    // A single row or column is a matrix-vector product: sgemv streams the matrix once, where
    // sgemm first packs it (2.2x slower for a decoding step's 50257 x 768 LM head).
    if M == 1 {
        // C[1×N] = op(B)ᵀ-side product with the row a = op(A)[1×K].
        let incA = transA ? lda : 1
        if transB {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(N), Int32(K), alpha, B, Int32(ldb), A, Int32(incA), beta, C, 1)
        } else {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(K), Int32(N), alpha, B, Int32(ldb), A, Int32(incA), beta, C, 1)
        }
        return
    }
    if N == 1 {
        // C[M×1] (stride ldc) = op(A) · b with b = op(B)[K×1].
        let incB = transB ? 1 : ldb
        if transA {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(K), Int32(M), alpha, A, Int32(lda), B, Int32(incB), beta, C, Int32(ldc))
        } else {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(M), Int32(K), alpha, A, Int32(lda), B, Int32(incB), beta, C, Int32(ldc))
        }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
}

/// Matrix product over the last two dimensions, with optional transposes.
///
/// - `a`: `[..., M, K]` (or `[..., K, M]` with `transposeA`); `b`: `[K, N]` (or `[N, K]` with
///   `transposeB`), or batched `[..., K, N]` with the same leading dimensions as `a`.
/// - Returns `[..., M, N]`.
///
/// When `b` is a plain matrix and `a` is not transposed, the leading dimensions of `a` fold into M
/// and the whole product is one `sgemm` call (a linear layer over `[B, T, C]`), forward and backward.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
    let aRows = a.shape[a.rank - 2], aCols = a.shape[a.rank - 1]
    let bRows = b.shape[b.rank - 2], bCols = b.shape[b.rank - 1]
    let M = transposeA ? aCols : aRows, K = transposeA ? aRows : aCols
    let Kb = transposeB ? bCols : bRows, N = transposeB ? bRows : bCols
    precondition(K == Kb, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · "
                 + "\(b.shape)\(transposeB ? "ᵀ" : "")")
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    precondition(bBatch.isEmpty || bBatch == aBatch,
                 "matmul batch dimensions differ: \(a.shape) and \(b.shape)")
    let batch = bBatch.isEmpty && !transposeA ? 1 : aBatch.reduce(1, *)
    let foldedM = bBatch.isEmpty && !transposeA ? a.count / K : M
    let out = Tensor(uninitialized: aBatch + [M, N])
    let lda = aCols, ldb = bCols
    let aStride = aRows * aCols, bStride = bBatch.isEmpty ? 0 : bRows * bCols, cStride = foldedM * N
    let ap = a.data, bp = b.data, cp = out.data
    for i in 0..<batch {
        sgemm(transposeA, transposeB, foldedM, N, K, ap + i &* aStride, lda, bp + i &* bStride, ldb,
              beta: 0, cp + i &* cStride, N)
    }
    record(out, inputs: [a, b]) { _, g in
        let gp = g.data, ap = a.data, bp = b.data
        if a.requiresGrad {
            let (da, acc) = a.gradBuffer()
            for i in 0..<batch {
                let gi = gp + i &* cStride, dai = da + i &* aStride, bi = bp + i &* bStride
                if transposeA {
                    // dA (K×M) = op(B) · Gᵀ
                    sgemm(transposeB, true, K, foldedM, N, bi, ldb, gi, N, beta: acc ? 1 : 0, dai, lda)
                } else {
                    // dA (M×K) = G · op(B)ᵀ
                    sgemm(false, !transposeB, foldedM, K, N, gi, N, bi, ldb, beta: acc ? 1 : 0, dai, lda)
                }
            }
        }
        if b.requiresGrad {
            let (db, acc) = b.gradBuffer()
            for i in 0..<batch {
                let gi = gp + i &* cStride, ai = ap + i &* aStride, dbi = db + i &* bStride
                // A shared b sums its gradient over the batch.
                let beta: Float = acc || (bStride == 0 && i > 0) ? 1 : 0
                if transposeB {
                    // dB (N×K) = Gᵀ · op(A)
                    sgemm(true, transposeA, N, K, foldedM, gi, N, ai, lda, beta: beta, dbi, ldb)
                } else {
                    // dB (K×N) = op(A)ᵀ · G
                    sgemm(!transposeA, false, K, N, foldedM, ai, lda, gi, N, beta: beta, dbi, ldb)
                }
            }
        }
    }
    return out
}

/// x · Wᵀ + bias for x `[..., In]`, W `[Out, In]` (the torch `nn.Linear` layout), bias `[Out]`.
///
/// The bias is fused: the output starts as bias rows and one `sgemm` adds the product (beta = 1);
/// the bias gradient is the column sum of the output gradient.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    guard let bias else { return matmul(x, weight, transposeB: true) }
    precondition(weight.rank == 2 && x.lastDim == weight.shape[1] && bias.count == weight.shape[0],
                 "linear: x \(x.shape), weight \(weight.shape), bias \(bias.shape)")
    let In = weight.shape[1], Out = weight.shape[0], N = x.count / Swift.max(In, 1)
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [Out])
    let op = out.data, bp = bias.data
    parallelFor(N, grain: rowGrain(Out)) { _, lo, hi in
        for r in lo..<hi { (op + r &* Out).update(from: bp, count: Out) }
    }
    sgemm(false, true, N, Out, In, x.data, In, weight.data, In, beta: 1, op, Out)
    record(out, inputs: [x, weight, bias]) { _, g in
        let gp = g.data
        if x.requiresGrad {
            let (dx, acc) = x.gradBuffer()
            sgemm(false, false, N, In, Out, gp, Out, weight.data, In, beta: acc ? 1 : 0, dx, In)
        }
        if weight.requiresGrad {
            let (dw, acc) = weight.gradBuffer()
            sgemm(true, false, Out, In, N, gp, Out, x.data, In, beta: acc ? 1 : 0, dw, In)
        }
        if bias.requiresGrad {
            let (db, acc) = bias.gradBuffer()
            columnSums(gp, rows: N, cols: Out, into: db, accumulate: acc)
        }
    }
    return out
}

/// dst[j] (= or +=) Σ_r src[r, j], parallel over row blocks with per-chunk partials.
func columnSums(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>,
                accumulate: Bool) {
    let chunks = workerCount(rows, grain: rowGrain(cols))
    let partials = Tensor(shape: [chunks, cols], repeating: 0)
    let pp = partials.data
    parallelFor(rows, grain: rowGrain(cols)) { c, lo, hi in
        let acc = pp + c &* cols
        for r in lo..<hi {
            let s = src + r &* cols
            var j = 0
            while j < cols { acc[j] += s[j]; j &+= 1 }
        }
    }
    reducePartials(pp, chunks: chunks, cols, into: dst, accumulate: accumulate)
}
