import NN
import TensorCore

// The critic-free methods sample `num_generations` responses per prompt, so the rows of a batch
// come in groups with the same (left-padded) query. Their forward passes run each query once and
// the responses attend to its keys (`DecoderModel.sharedPrefixHiddenStates`): the same log-probs
// as one forward per row, up to float32 summation order, at a fraction of the work when prompts
// are long.

/// The rows of a `[rows, ctx + R]` batch grouped by identical queries.
struct SharedQueries {
    /// One row per distinct query (the first with it).
    let representatives: [Int]
    /// Each row's query, an index into `representatives`.
    let prefixOf: [Int]

    init(_ qr: [Int32], rows: Int, length L: Int, contextLength ctx: Int) {
        var seen: [ArraySlice<Int32>: Int] = [:]
        var reps: [Int] = [], of: [Int] = []
        of.reserveCapacity(rows)
        for r in 0..<rows {
            let key = qr[(r * L)..<(r * L + ctx)]
            if let u = seen[key] {
                of.append(u)
            } else {
                seen[key] = reps.count
                of.append(reps.count)
                reps.append(r)
            }
        }
        representatives = reps
        prefixOf = of
    }

    /// Whether any query is shared (else the plain forward is as cheap).
    var shares: Bool { representatives.count < prefixOf.count }
}

/// The hidden states `[rows, R, C]` that predict the response tokens of `[rows, ctx + R]`
/// query-responses (`responseHiddenStates(PaddedInputs(...).hiddenStates(model), ...)`), each
/// distinct query run once; nil when no two rows share a query.
func sharedQueryResponseHidden(_ model: DecoderModel, queryResponses qr: [Int32], rows: Int, contextLength ctx: Int,
                               responseLength R: Int, pad: Int32) -> Tensor? {
    let L = ctx + R
    let groups = SharedQueries(qr, rows: rows, length: L, contextLength: ctx)
    guard groups.shares, ctx >= 1, R >= 1 else { return nil }
    let inputs = PaddedInputs(ids: qr, rows: rows, length: L, pad: pad)
    let U = groups.representatives.count
    var pIds = [Int32](), pMask = [Float](), pPos = [Int32]()
    pIds.reserveCapacity(U * ctx)
    pMask.reserveCapacity(U * ctx)
    pPos.reserveCapacity(U * ctx)
    for r in groups.representatives {
        pIds += inputs.ids[(r * L)..<(r * L + ctx)]
        pMask += inputs.mask[(r * L)..<(r * L + ctx)]
        pPos += inputs.positions[(r * L)..<(r * L + ctx)]
    }
    var sIds = [Int32](), sMask = [Float](), sPos = [Int32]()
    sIds.reserveCapacity(rows * R)
    sMask.reserveCapacity(rows * R)
    sPos.reserveCapacity(rows * R)
    for r in 0..<rows {
        sIds += inputs.ids[(r * L + ctx)..<((r + 1) * L)]
        sMask += inputs.mask[(r * L + ctx)..<((r + 1) * L)]
        sPos += inputs.positions[(r * L + ctx)..<((r + 1) * L)]
    }
    let (hp, hs) = model.sharedPrefixHiddenStates(prefixIds: pIds, prefixMask: pMask, prefixPositions: pPos, prefixRows: U,
                                                  prefixLength: ctx, suffixIds: sIds, suffixMask: sMask, suffixPositions: sPos,
                                                  rows: rows, suffixLength: R, prefixOf: groups.prefixOf)
    let C = hp.lastDim
    // The first response token is predicted at the query's last position, the others in the suffix.
    let last = embedding(hp.slice(axis: 1, (ctx - 1)..<ctx).reshaped([U, C]), ids: groups.prefixOf.map { Int32($0) })
        .reshaped([rows, 1, C])
    return R == 1 ? last : concat([last, hs.slice(axis: 1, 0..<(R - 1))], axis: 1)
}

/// `responseLogProbsNoGrad` with each distinct query of a chunk run once.
func sharedQueryLogProbsNoGrad(_ model: DecoderModel, queryResponses qr: [Int32], rows: Int, contextLength ctx: Int,
                               responseLength R: Int, pad: Int32, temperature: Double, chunk: Int) -> [Float] {
    let L = ctx + R, step = Swift.max(1, chunk)
    var out: [Float] = []
    out.reserveCapacity(rows * R)
    var start = 0
    while start < rows {
        let end = Swift.min(rows, start + step)
        let part = Array(qr[(start * L)..<(end * L)])
        out += Autograd.withoutGrad {
            let h = sharedQueryResponseHidden(model, queryResponses: part, rows: end - start, contextLength: ctx, responseLength: R, pad: pad)
                ?? responseHiddenStates(PaddedInputs(ids: part, rows: end - start, length: L, pad: pad).hiddenStates(model),
                                        contextLength: ctx, responseLength: R)
            let logits = temperatureScaledLogits(model.logits(hidden: h), temperature: temperature)
            var responses = [Int32](repeating: 0, count: (end - start) * R)
            for r in 0..<(end - start) { for t in 0..<R { responses[r * R + t] = part[r * L + ctx + t] } }
            return responseLogProbs(logits: logits, responses: responses).values
        }
        start = end
    }
    return out
}
