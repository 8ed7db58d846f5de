import Testing
import Generation

@Suite struct StopStringFilterTests {
    /// Pushes the chunks and returns what was shown, finish included.
    func stream(_ chunks: [String], _ stops: [String]) -> (shown: [String], stopped: Bool) {
        var filter = StopStringFilter(stopStrings: stops)
        var shown = chunks.map { filter.push($0) }
        shown.append(filter.finish())
        return (shown, filter.stopped)
    }

    @Test func textWithoutStopsPassesThroughAtOnce() {
        #expect(stream(["Hel", "lo", " world"], []).shown == ["Hel", "lo", " world", ""])
        #expect(stream(["Hel", "lo"], ["xyz"]).shown == ["Hel", "lo", ""])
    }

    @Test func aStopStringSplitAcrossChunksIsNeverShown() {
        let (shown, stopped) = stream(["Paris.", "\nUs", "er", ": more"], ["\nUser:"])
        #expect(shown == ["Paris.", "", "", "", ""])
        #expect(stopped)
    }

    @Test func aHeldPrefixThatDoesNotCompleteIsReleased() {
        let (shown, stopped) = stream(["a\nU", "nder", " b\n"], ["\nUser:"])
        #expect(shown == ["a", "\nUnder", " b", "\n"])
        #expect(!stopped)
    }

    @Test func theEarliestOfSeveralStopsWins() {
        let (shown, _) = stream(["one END two STOP"], ["STOP", "END"])
        #expect(shown.joined() == "one ")
    }

    @Test func aStopInsideOneChunkCutsIt() {
        #expect(stream(["abc###def", "ghi"], ["###"]).shown == ["abc", "", ""])
    }
}
