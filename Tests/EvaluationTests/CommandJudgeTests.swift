import Datasets
import Evaluation
import Foundation
import Testing
import Tokenizers

/// Writes an executable shell script `name` into `scratch`.
private func script(_ scratch: Scratch, _ name: String, _ body: String, executable: Bool = true) throws -> String {
    let url = try scratch.write(name, "#!/bin/sh\n" + body + "\n")
    try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: url.path)
    return url.path
}

/// The message of the error `body` throws ("" when it does not throw).
private func message(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        return ""
    } catch {
        return "\(error)"
    }
}

private let items = [JudgeItem(prompt: "p", response: "abc"), JudgeItem(prompt: "q", response: ""),
                     JudgeItem(prompt: .chat([.system("s"), .user("u")]), response: "hello world")]

@Suite struct CommandJudgeTests {
    @Test func writesOneJSONLinePerItemAndReadsOneNumberPerLine() throws {
        let scratch = try Scratch()
        // The response's length: the text between "response":" and the closing "} (no escapes here).
        let length = try script(scratch, "length.sh", #"exec awk -F '"response":"' '{ r = $2; sub(/"}$/, "", r); print length(r) }'"#)
        let judge = try CommandJudge(executable: length)
        #expect(judge.name == "command")
        #expect(try judge.scores(items) == [3, 0, 11])
        #expect(try judge.scores([]) == [])
        // What the program reads: the project's JSON quoting, messages for a conversation.
        let copy = try script(scratch, "copy.sh", "cat > \"$1\"; echo 1; echo 2; echo 3")
        let seen = scratch.directory.appendingPathComponent("seen.jsonl").path
        #expect(try CommandJudge(executable: copy, arguments: [seen]).scores(items) == [1, 2, 3])
        #expect(try String(contentsOfFile: seen, encoding: .utf8) == """
            {"prompt":"p","response":"abc"}
            {"prompt":"q","response":""}
            {"prompt":[{"role":"system","content":"s"},{"role":"user","content":"u"}],"response":"hello world"}

            """)
        #expect(CommandJudge.line(for: JudgeItem(prompt: "say \"hi\"\n", response: "a\\b\u{1}"))
                == #"{"prompt":"say \"hi\"\n","response":"a\\b\u0001"}"#)
        // Arguments are passed as is, without a shell; spaces and signs survive.
        let echo = try script(scratch, "args.sh", "cat > /dev/null; echo \"$1\"; echo \" $2 \"")
        #expect(try CommandJudge(executable: echo, arguments: ["-1.5", "2e3"]).scores(Array(items.prefix(2))) == [-1.5, 2000])
    }

    @Test func aLargeBatchDoesNotDeadlock() throws {
        // The program answers each line as it reads it, so stdin and stdout must flow together.
        let scratch = try Scratch()
        let count = try script(scratch, "count.sh", "exec awk '{ print NR }'")
        let big = (0..<20_000).map { JudgeItem(prompt: "prompt \($0)", response: String(repeating: "x", count: 300)) }
        let scores = try CommandJudge(executable: count).scores(big)
        #expect(scores == (1...20_000).map(Double.init))
    }

    @Test func errorsNameTheCommandAndWhatWentWrong() throws {
        let scratch = try Scratch()
        let fails = try script(scratch, "fails.sh", "cat > /dev/null; echo 'reading the model' >&2; echo 'no GPU here' >&2; exit 3")
        #expect(message { try CommandJudge(executable: fails).scores(items) }
                == "command judge `\(fails)`: exited with status 3; its stderr ends with:\n  reading the model\n  no GPU here")
        let abc = try script(scratch, "abc.sh", "cat > /dev/null; echo 1; echo abc; echo 3")
        #expect(message { try CommandJudge(executable: abc).scores(items) }
                == "command judge `\(abc)`: line 2 of its output is \"abc\", not a number")
        let few = try script(scratch, "few.sh", "cat > /dev/null; echo 1; echo 2")
        #expect(message { try CommandJudge(executable: few, arguments: ["--x"]).scores(items) }
                == "command judge `\(few) --x`: printed 2 lines for 3 items; expected one number per line")
        let nan = try script(scratch, "nan.sh", "cat > /dev/null; echo 1; echo nan; echo inf")
        #expect(message { try CommandJudge(executable: nan).scores(items) }
                == "command judge `\(nan)`: line 2 of its output is nan; scores must be finite numbers")
        // A program that exits without reading its input.
        let deaf = try script(scratch, "deaf.sh", "exit 0")
        let big = (0..<5_000).map { JudgeItem(prompt: "p", response: String(repeating: "y", count: 100) + "\($0)") }
        #expect(message { try CommandJudge(executable: deaf).scores(big) }
                == "command judge `\(deaf)`: printed 0 lines for 5000 items; expected one number per line")
        let killed = try script(scratch, "killed.sh", "kill -9 $$")
        #expect(message { try CommandJudge(executable: killed).scores(items) } == "command judge `\(killed)`: was killed by signal 9")
    }

    @Test func aMissingOrNonExecutableProgramIsNamed() throws {
        let scratch = try Scratch()
        let missing = scratch.directory.appendingPathComponent("nope.sh").path
        #expect(message { try CommandJudge(executable: missing, arguments: ["a"]) }
                == "command judge `\(missing) a`: \(missing) not found")
        let plain = try script(scratch, "plain.sh", "echo 1", executable: false)
        #expect(message { try CommandJudge(executable: plain) } == "command judge `\(plain)`: \(plain) is not an executable file")
        #expect(message { try CommandJudge(executable: scratch.directory.path) }
                == "command judge `\(scratch.directory.path)`: \(scratch.directory.path) is not an executable file")
        #expect(message { try CommandJudge(executable: "rein-no-such-judge") }
                == "command judge `rein-no-such-judge`: rein-no-such-judge not found in PATH")
        // A bare name is looked up in PATH.
        #expect(try CommandJudge(executable: "sh", arguments: ["-c", "cat > /dev/null; echo 4"]).scores([items[0]]) == [4])
        #expect(throws: EvaluationError.self) { try CommandJudge(executable: "sh", timeout: 0) }
    }

    @Test func aSlowProgramIsKilledAtTheTimeout() throws {
        let scratch = try Scratch()
        let slow = try script(scratch, "slow.sh", "exec sleep 30")
        let start = Date()
        #expect(message { try CommandJudge(executable: slow, timeout: 0.5).scores(items) }
                == "command judge `\(slow)`: did not finish within its timeout of 0.5 s and was killed")
        #expect(Date().timeIntervalSince(start) < 10)
        // A background process still running after the program exits counts against the timeout.
        let leaky = try script(scratch, "leaky.sh", "cat > /dev/null; sleep 3 & echo 1; echo 2; echo 3")
        #expect(message { try CommandJudge(executable: leaky, timeout: 1).scores(items) }
                == "command judge `\(leaky)`: did not finish within its timeout of 1 s and was killed")
    }
}
