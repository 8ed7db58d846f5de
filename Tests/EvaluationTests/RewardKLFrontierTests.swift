import Evaluation
import Testing

@Suite struct RewardKLFrontierTests {
    @Test func paretoFrontKeepsThePointsNothingDominates() throws {
        let points = [
            KLRewardPoint("sft", kl: 0, reward: 0.1),
            KLRewardPoint("ppo@100", kl: 0.5, reward: 0.3),
            KLRewardPoint("ppo@50", kl: 0.4, reward: 0.2),
            KLRewardPoint("ppo@150", kl: 1.0, reward: 0.25),  // dominated by ppo@100: more KL, less reward
            KLRewardPoint("best-of-16", kl: 1.835, reward: 0.5),
            KLRewardPoint("dpo", kl: 0.5, reward: 0.3),  // the same as ppo@100: neither dominates the other
            KLRewardPoint("best-of-4", kl: 0.636, reward: 0.3),  // dominated by ppo@100: same reward, more KL
            KLRewardPoint("sft-copy", kl: 0, reward: 0.05),  // dominated by sft: same KL, less reward
        ]
        #expect(try CompareStatistics.paretoFront(points) == [0, 2, 1, 5, 4])
        #expect(try CompareStatistics.paretoFront([]) == [])
        #expect(throws: EvaluationError.self) { try CompareStatistics.paretoFront([KLRewardPoint("x", kl: .nan, reward: 1)]) }
    }

    @Test func rewardAgainstSqrtKL() throws {
        let plotted = try CompareStatistics.rewardVsSqrtKL([KLRewardPoint("a", kl: 4, reward: 1.5), KLRewardPoint("b", kl: -0.01, reward: 0.2)])
        #expect(plotted == [SqrtKLRewardPoint(label: "a", sqrtKL: 2, reward: 1.5), SqrtKLRewardPoint(label: "b", sqrtKL: 0, reward: 0.2)])
        #expect(throws: EvaluationError.self) { try CompareStatistics.rewardVsSqrtKL([KLRewardPoint("x", kl: 1, reward: .infinity)]) }
    }
}
