import Foundation
import Testing
@testable import Report

@Suite struct RunReportTests {
    @Test func metricsShareAChartWithTheirTrainingOrEvaluationTwin() {
        let two = [ChartPoint(x: 1, y: 1), ChartPoint(x: 2, y: 2)]
        let names = ["train/loss", "eval/loss", "train/rewards/margins", "eval/rewards/margins", "train/logps/rejected",
                     "objective/kl", "reward", "train/learning_rate", "eval/kl"]
        var series = Dictionary(uniqueKeysWithValues: names.map { ($0, two) })
        series["eval/exact_match"] = [ChartPoint(x: 0, y: 0.5)]
        let groups = RunReport.chartGroups(series)
        #expect(groups.map(\.name) == ["loss", "reward", "kl", "objective/kl", "learning_rate", "logps/rejected", "rewards/margins"])
        #expect(groups.map(\.metrics) == [["train/loss", "eval/loss"], ["reward"], ["eval/kl"], ["objective/kl"], ["train/learning_rate"],
                                          ["train/logps/rejected"], ["train/rewards/margins", "eval/rewards/margins"]])
    }

    @Test func finalMetricsListEvaluationFirst() {
        #expect(RunReport.metricOrder(["train/loss", "eval/loss", "lr", "eval/accuracy"]) == ["eval/accuracy", "eval/loss", "lr", "train/loss"])
    }
}
