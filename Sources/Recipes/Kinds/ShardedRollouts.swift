import DataParallel
import Evaluation
import Foundation
import Generation

// Online RL under `mpirun`: each process samples and scores its share of an update's prompts, and
// every process then holds the whole batch (the rollout statistics, whitening and group
// advantages are those of the whole batch). A row's generator is seeded by the seed, the step, the
// prompt's dataset index and the sample index (`RolloutEngine.rng`), so its tokens do not depend on
// which process sampled it or on how many there are.

/// The share of `count` items process `rank` of `size` takes: contiguous, the first
/// `count % size` processes one item more (the split of `EpochSource`).
func shareRange(count: Int, rank: Int, size: Int) -> Range<Int> {
    let base = count / size, extra = count % size
    let start = rank * base + min(rank, extra)
    return start..<(start + base + (rank < extra ? 1 : 0))
}

/// The rows one process sampled and scored, as sent to the others (floats by their bits, so they
/// arrive exactly).
private struct RolloutShare: Codable {
    var responses: [Int32]
    var logProbs: [UInt32]
    var stopReasons: [StopReason]
    var texts: [String]
    var scores: [UInt32]
}

extension OnlineRLLoop {
    /// Samples `samplesPerPrompt` responses to the prompts `indices` for update `step` and scores
    /// them with `score`. Alone, one batch; under `mpirun`, each process its share of the prompts,
    /// gathered into the same batch on every process.
    func sampleAndScore(_ engine: RolloutEngine, prompts: [RolloutPrompt], indices: [Int], step: Int,
                        score: (RolloutBatch) throws -> [Float]) throws -> (batch: RolloutBatch, scores: [Float]) {
        let world = ProcessGroup.world
        let chosen = indices.map { prompts[$0] }
        guard world.isDistributed else {
            let batch = try engine.generate(chosen, step: step, promptIndices: indices)
            return (batch, try score(batch))
        }
        let mine = shareRange(count: indices.count, rank: world.rank, size: world.size)
        var batch = try engine.generate(Array(chosen[mine]), step: step, promptIndices: Array(indices[mine]))
        let scores = batch.rows > 0 ? try score(batch) : []
        guard scores.count == batch.rows else { throw RunnerError("the judge gave \(scores.count) scores for \(batch.rows) responses") }
        let share = RolloutShare(responses: batch.responses, logProbs: batch.logProbs.map(\.bitPattern), stopReasons: batch.stopReasons,
                                 texts: batch.responseTexts, scores: scores.map(\.bitPattern))
        let parts = try world.allGather(JSONEncoder().encode(share)).enumerated().map { rank, data in
            do { return try JSONDecoder().decode(RolloutShare.self, from: data) } catch {
                throw RunnerError("the rollouts of process \(rank) cannot be read (\(error)); every process must run the same build")
            }
        }
        // The whole batch, laid out as one process would have sampled it.
        let S = samplesPerPrompt, R = batch.responseLength, rows = indices.count * S
        let ctx = chosen.map(\.ids.count).max() ?? 0
        batch.rows = rows
        batch.contextLength = ctx
        batch.prompts = chosen
        batch.queries = [Int32](repeating: batch.padId, count: rows * ctx)
        for r in 0..<rows {
            let ids = chosen[r / S].ids
            batch.queries.replaceSubrange((r * ctx + ctx - ids.count)..<((r + 1) * ctx), with: ids)
        }
        batch.promptIndex = (0..<rows).map { $0 / S }
        batch.datasetIndex = (0..<rows).map { indices[$0 / S] }
        batch.sampleIndex = (0..<rows).map { $0 % S }
        batch.responses = parts.flatMap(\.responses)
        batch.logProbs = parts.flatMap { $0.logProbs.map(Float.init(bitPattern:)) }
        batch.stopReasons = parts.flatMap(\.stopReasons)
        batch.responseTexts = parts.flatMap(\.texts)
        let all = parts.flatMap { $0.scores.map(Float.init(bitPattern:)) }
        guard batch.responses.count == rows * R, batch.logProbs.count == rows * R, batch.stopReasons.count == rows,
              batch.responseTexts.count == rows, all.count == rows else {
            throw RunnerError("update \(step): the processes sent \(batch.stopReasons.count) rollouts for \(rows); every process must run the same recipe")
        }
        return (batch, all)
    }

    /// Every process wants to go on after an update (a Ctrl-C seen by one stops all after the same update).
    func agreed(_ goOn: Bool) throws -> Bool {
        let world = ProcessGroup.world
        guard world.isDistributed else { return goOn }
        var flag = [goOn ? 1.0 : 0.0]
        try world.allReduce(&flag, .min)
        return flag[0] == 1
    }

    /// Checks that every process starts at update `update` (they resume from rank 0's checkpoint).
    func checkSameStart(_ update: Int) throws {
        let world = ProcessGroup.world
        guard world.isDistributed else { return }
        var updates = [Double(update), -Double(update)]
        try world.allReduce(&updates, .max)
        guard updates[0] == -updates[1] else {
            throw RunnerError("the processes start at different updates (\(Int(-updates[1])) to \(Int(updates[0]))); every process must see rank 0's checkpoint directory (a shared file system)")
        }
    }
}
