import Foundation
import Optimizers
import Testing

private func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-12 }

@Test func warmupRisesLinearlyFromZero() {
    let s = LRSchedule.linear(peak: 1e-3, warmupSteps: 10, totalSteps: 110)
    #expect(s.lr(at: 0) == 0)
    #expect(close(s.lr(at: 5), 5e-4))
    #expect(close(s.lr(at: 9), 9e-4))
    #expect(s.lr(at: 10) == 1e-3)
    #expect(LRSchedule.constant(2e-5, warmupSteps: 4).lr(at: 2) == 1e-5)
}

@Test func constantScheduleStaysAtThePeak() {
    let s = LRSchedule.constant(3e-4)
    #expect(s.lr(at: 0) == 3e-4 && s.lr(at: 1_000_000) == 3e-4)
}

@Test func linearDecayMatchesTransformers() {
    // get_linear_schedule_with_warmup: max(0, (T - s) / max(1, T - W)) after warmup.
    let s = LRSchedule.linear(peak: 1e-3, warmupSteps: 10, totalSteps: 110)
    #expect(close(s.lr(at: 60), 5e-4))
    #expect(close(s.lr(at: 85), 1e-3 * 25 / 100))
    #expect(s.lr(at: 110) == 0)
    #expect(s.lr(at: 500) == 0)
}

@Test func cosineDecayMatchesTransformers() {
    // get_cosine_schedule_with_warmup: 0.5 (1 + cos(π progress)) after warmup.
    let s = LRSchedule.cosine(peak: 1e-3, warmupSteps: 10, totalSteps: 110)
    #expect(s.lr(at: 10) == 1e-3)
    #expect(close(s.lr(at: 35), 1e-3 * 0.5 * (1 + cos(Double.pi / 4))))
    #expect(close(s.lr(at: 60), 5e-4))
    #expect(close(s.lr(at: 110), 0))
    #expect(close(s.lr(at: 200), 0))  // holds at the floor where transformers would rise again
}

@Test func decaysEndAtTheFloor() {
    let cosine = LRSchedule.cosine(peak: 1e-3, warmupSteps: 0, totalSteps: 100, minLR: 1e-4)
    #expect(cosine.lr(at: 0) == 1e-3)
    #expect(close(cosine.lr(at: 50), 1e-4 + 0.9e-3 * 0.5))
    #expect(close(cosine.lr(at: 100), 1e-4))
    #expect(close(cosine.lr(at: 1000), 1e-4))
    let linear = LRSchedule.linear(peak: 1e-3, totalSteps: 100, minLR: 1e-4)
    #expect(close(linear.lr(at: 25), 1e-4 + 0.9e-3 * 0.75))
    #expect(close(linear.lr(at: 100), 1e-4))
    #expect(close(linear.lr(at: 101), 1e-4))
}

@Test func scheduleDecodesWithDefaults() throws {
    let json = #"{"decay": "cosine", "learning_rate": 0.001, "total_steps": 100}"#
    let s = try JSONDecoder().decode(LRSchedule.self, from: Data(json.utf8))
    #expect(s == .cosine(peak: 1e-3, totalSteps: 100))
    let roundTrip = try JSONDecoder().decode(LRSchedule.self, from: JSONEncoder().encode(s))
    #expect(roundTrip == s)
    let bad = #"{"decay": "linear", "learning_rate": 0.001, "warmup_steps": -1}"#
    #expect(throws: DecodingError.self) { try JSONDecoder().decode(LRSchedule.self, from: Data(bad.utf8)) }
}
