import Foundation

/// A learning-rate schedule: linear warmup from 0, then constant, linear or cosine decay to a floor.
///
/// `lr(at: s)` is the rate of the update that follows `s` completed updates (the first update uses
/// `lr(at: 0)`), with `W = warmupSteps`, `T = totalSteps`, `peak`, `floor = minLR`:
///
/// ```
/// s < W:         peak * (s / W)
/// constant:      peak
/// linear:        floor + (peak - floor) * max(0, (T - s) / max(1, T - W))
/// cosine:        floor + (peak - floor) * 0.5 * (1 + cos(π * min(1, (s - W) / max(1, T - W))))
/// ```
///
/// With a zero floor these are Hugging Face transformers' `get_constant_schedule_with_warmup`,
/// `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup` (stepped after each
/// update, so a warmup's first update has rate 0); with a floor, the cosine is transformers'
/// `get_cosine_with_min_lr_schedule_with_warmup` with `min_lr`. One difference: past `T`,
/// transformers' cosine rises again, while this one stays at the floor.
public struct LRSchedule: Codable, Sendable, Equatable {
    /// What follows the warmup.
    public enum Decay: String, Codable, Sendable {
        /// Stay at the peak.
        case constant
        /// Straight line from the peak at the end of warmup to the floor at `totalSteps`.
        case linear
        /// Half a cosine from the peak at the end of warmup to the floor at `totalSteps`.
        case cosine
    }

    /// The shape after warmup.
    public var decay: Decay
    /// The rate at the end of warmup.
    public var peak: Double
    /// Updates over which the rate rises linearly from 0 to `peak` (0: no warmup).
    public var warmupSteps: Int
    /// The update count at which a decay reaches `minLR` (unused by a constant schedule).
    public var totalSteps: Int
    /// The floor a decay ends at.
    public var minLR: Double

    /// A schedule from its parts.
    public init(decay: Decay, peak: Double, warmupSteps: Int = 0, totalSteps: Int = 0, minLR: Double = 0) {
        precondition(warmupSteps >= 0, "negative warmupSteps \(warmupSteps)")
        self.decay = decay
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minLR = minLR
    }

    /// A constant rate, optionally after a linear warmup.
    public static func constant(_ lr: Double, warmupSteps: Int = 0) -> LRSchedule {
        LRSchedule(decay: .constant, peak: lr, warmupSteps: warmupSteps)
    }

    /// Linear warmup, then linear decay to `minLR` at `totalSteps`.
    public static func linear(peak: Double, warmupSteps: Int = 0, totalSteps: Int,
                              minLR: Double = 0) -> LRSchedule {
        LRSchedule(decay: .linear, peak: peak, warmupSteps: warmupSteps, totalSteps: totalSteps, minLR: minLR)
    }

    /// Linear warmup, then cosine decay to `minLR` at `totalSteps`.
    public static func cosine(peak: Double, warmupSteps: Int = 0, totalSteps: Int,
                              minLR: Double = 0) -> LRSchedule {
        LRSchedule(decay: .cosine, peak: peak, warmupSteps: warmupSteps, totalSteps: totalSteps, minLR: minLR)
    }

    /// The rate for the update that follows `step` completed updates.
    public func lr(at step: Int) -> Double {
        precondition(step >= 0, "negative step \(step)")
        if step < warmupSteps { return peak * (Double(step) / Double(max(1, warmupSteps))) }
        let span = Double(max(1, totalSteps - warmupSteps))
        let factor: Double
        switch decay {
        case .constant:
            return peak
        case .linear:
            factor = max(0, Double(totalSteps - step) / span)
        case .cosine:
            let progress = min(1, Double(step - warmupSteps) / span)
            factor = 0.5 * (1 + Foundation.cos(Double.pi * progress))
        }
        return minLR + (peak - minLR) * factor  // exactly peak * factor for a zero floor
    }

    private enum CodingKeys: String, CodingKey {
        case decay, peak = "learning_rate", warmupSteps = "warmup_steps"
        case totalSteps = "total_steps", minLR = "min_lr"
    }

    /// Decodes a schedule; `warmup_steps`, `total_steps` and `min_lr` default to 0.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let warmup = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        guard warmup >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .warmupSteps, in: c,
                                                   debugDescription: "warmup_steps must be 0 or more")
        }
        self.init(decay: try c.decode(Decay.self, forKey: .decay),
                  peak: try c.decode(Double.self, forKey: .peak),
                  warmupSteps: warmup,
                  totalSteps: try c.decodeIfPresent(Int.self, forKey: .totalSteps) ?? 0,
                  minLR: try c.decodeIfPresent(Double.self, forKey: .minLR) ?? 0)
    }
}
