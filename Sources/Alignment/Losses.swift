import TensorCore

// The preference losses of the reward and DPO stages, on tensors so they backpropagate. Formulas:
// ../docs and RLHF.md (Bradley-Terry with margin and centering; DPO, IPO, cDPO).

/// Sum of per-token log-probabilities of each sequence's scored tokens.
///
/// - Parameters:
///   - logits: `[B, T, V]`; logits at t predict the token at t+1.
///   - ids: B·T token ids.
///   - lossMask: B·T flags; a true entry at t scores token t (so position 0 is never scored).
/// - Returns: `[B]` sums of log p(token t | tokens < t) over the scored tokens, and the counts.
public func sequenceLogProbs(logits: Tensor, ids: [Int32], lossMask: [Bool]) -> (sums: Tensor, counts: [Int]) {
    let B = logits.shape[0], T = logits.shape[1]
    precondition(ids.count == B * T && lossMask.count == B * T, "sequenceLogProbs: \(ids.count) ids for logits \(logits.shape)")
    var targets = [Int32](repeating: ignoreIndex, count: B * T)
    var counts = [Int](repeating: 0, count: B)
    for b in 0..<B {
        for t in 1..<max(T, 1) where lossMask[b * T + t] {
            targets[b * T + t - 1] = ids[b * T + t]
            counts[b] += 1
        }
    }
    let perToken = gatherLogProbs(logits: logits, ids: targets)   // [B, T], zero where ignored
    return (perToken.sum(axis: 1), counts)
}

/// Bradley-Terry reward-model loss: mean of -log σ(r_c - r_r - m), plus η·mean((r_c + r_r)²) when
/// centering. Metrics: accuracy (r_c > r_r), margin mean(r_c - r_r), and the rewards' mean and std.
public func bradleyTerryLoss(chosen: Tensor, rejected: Tensor, margins: [Float]? = nil, centering: Float = 0)
    -> (loss: Tensor, metrics: [String: Double]) {
    precondition(chosen.shape == rejected.shape && chosen.rank == 1, "bradleyTerryLoss: shapes \(chosen.shape), \(rejected.shape)")
    let B = chosen.count
    var diff = chosen - rejected
    if let margins {
        precondition(margins.count == B, "bradleyTerryLoss: \(margins.count) margins for \(B) pairs")
        diff = diff - Tensor(shape: [B], values: margins)
    }
    var loss = -logSigmoid(diff).mean()
    if centering > 0 {
        let total = chosen + rejected
        loss = loss + (total * total).mean() * centering
    }
    let c = chosen.values.map(Double.init), r = rejected.values.map(Double.init)
    let all = c + r
    let mean = all.reduce(0, +) / Double(all.count)
    let std = (all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(all.count)).squareRoot()
    return (loss, [
        "accuracy": Double(zip(c, r).filter { $0 > $1 }.count) / Double(B),
        "margin": zip(c, r).reduce(0) { $0 + $1.0 - $1.1 } / Double(B),
        "reward_mean": mean, "reward_std": std,
    ])
}

/// Which preference-optimization loss DPO uses.
public enum DPOLossType: String, Codable, Sendable {
    /// -log σ(βΔ) (Rafailov et al.).
    case sigmoid
    /// (Δ/length-normalized - 1/(2β))², with each side's log-ratio averaged over its tokens.
    case ipo
    /// Label smoothing ε: -(1-ε) log σ(βΔ) - ε log σ(-βΔ) (conservative DPO).
    case cdpo
}

/// The DPO family of losses from summed log-probabilities of the completions.
///
/// With h(y) = log π(y) - log π_ref(y) and Δ = h(chosen) - h(rejected). Metrics, TRL's names:
/// `rewards/chosen` = β·h(chosen) (mean), `rewards/rejected`, `rewards/accuracies` (chosen reward >
/// rejected), `rewards/margins`, `logps/chosen`, `logps/rejected`.
public func dpoLoss(policyChosen: Tensor, policyRejected: Tensor, referenceChosen: [Float], referenceRejected: [Float],
                    beta: Float, type: DPOLossType = .sigmoid, labelSmoothing: Float = 0,
                    chosenCounts: [Int]? = nil, rejectedCounts: [Int]? = nil) -> (loss: Tensor, metrics: [String: Double]) {
    let B = policyChosen.count
    precondition(policyRejected.count == B && referenceChosen.count == B && referenceRejected.count == B,
                 "dpoLoss: batch sizes differ")
    let refC = Tensor(shape: [B], values: referenceChosen), refR = Tensor(shape: [B], values: referenceRejected)
    var hc = policyChosen - refC, hr = policyRejected - refR
    let loss: Tensor
    switch type {
    case .sigmoid, .cdpo:
        let z = (hc - hr) * beta
        let eps = type == .cdpo ? labelSmoothing : 0
        loss = eps > 0 ? (-logSigmoid(z) * (1 - eps) - logSigmoid(-z) * eps).mean() : (-logSigmoid(z)).mean()
    case .ipo:
        guard let cc = chosenCounts, let rc = rejectedCounts else { preconditionFailure("IPO needs the token counts") }
        hc = hc / Tensor(shape: [B], values: cc.map { Float(max($0, 1)) })
        hr = hr / Tensor(shape: [B], values: rc.map { Float(max($0, 1)) })
        let d = (hc - hr) - 1 / (2 * beta)
        loss = (d * d).mean()
    }
    let rc = (policyChosen - refC).values.map { Double(beta) * Double($0) }
    let rr = (policyRejected - refR).values.map { Double(beta) * Double($0) }
    let n = Double(B)
    return (loss, [
        "rewards/chosen": rc.reduce(0, +) / n,
        "rewards/rejected": rr.reduce(0, +) / n,
        "rewards/accuracies": Double(zip(rc, rr).filter { $0 > $1 }.count) / n,
        "rewards/margins": zip(rc, rr).reduce(0) { $0 + $1.0 - $1.1 } / n,
        "logps/chosen": policyChosen.values.reduce(0) { $0 + Double($1) } / n,
        "logps/rejected": policyRejected.values.reduce(0) { $0 + Double($1) } / n,
    ])
}
