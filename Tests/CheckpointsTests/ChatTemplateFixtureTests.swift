import Checkpoints
import Foundation
import Testing
import Tokenizers

/// A file of `Tests/Fixtures/chat-template/`: a Jinja chat template and conversations rendered
/// with it by transformers' `apply_chat_template`.
struct ChatTemplateFixture: Decodable {
    struct Case: Decodable {
        let messages: [ChatMessage]
        let addGenerationPrompt: Bool
        let text: String

        enum CodingKeys: String, CodingKey {
            case messages, addGenerationPrompt = "add_generation_prompt", text
        }
    }

    let template: String
    let cases: [Case]

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/chat-template")

    static func load(_ url: URL) throws -> ChatTemplateFixture {
        try JSONDecoder().decode(ChatTemplateFixture.self, from: Data(contentsOf: url))
    }

    /// Every fixture file, by name.
    static func all() throws -> [(name: String, fixture: ChatTemplateFixture)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { ($0, try load(directory.appendingPathComponent($0))) }
    }
}

@Suite struct ChatTemplateFixtureTests {
    @Test func everyFixtureCaseRendersExactlyAsTheJinjaTemplateDoes() throws {
        let fixtures = try ChatTemplateFixture.all()
        #expect(!fixtures.isEmpty)
        let tokenizer = try Tokenizer(tokenizerJSON: ChatTemplateFixture.directory.appendingPathComponent("../hf-tiny-gpt2/tokenizer.json"))
        for (name, fixture) in fixtures {
            #expect(!fixture.cases.isEmpty, "\(name)")
            let template = LanguageModel.template(jinja: fixture.template, tokenizer: tokenizer)
            for (i, c) in fixture.cases.enumerated() {
                #expect(template.render(c.messages, addGenerationPrompt: c.addGenerationPrompt) == c.text, "\(name) case \(i)")
            }
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: smolLM2GGUFPath), "assets/smollm2 is missing: run scripts/fetch-assets.sh"))
    func theSmolLM2GGUFTemplateRendersEveryCase() throws {
        let fixture = try ChatTemplateFixture.load(ChatTemplateFixture.directory.appendingPathComponent("smollm2.json"))
        let gguf = try GGUFFile(url: URL(fileURLWithPath: smolLM2GGUFPath))
        #expect(try gguf.string("tokenizer.chat_template") == fixture.template)
        let lm = try #require(smolLM2Model)
        for (i, c) in fixture.cases.enumerated() {
            #expect(lm.chatTemplate.render(c.messages, addGenerationPrompt: c.addGenerationPrompt) == c.text, "case \(i)")
            let encoding = try lm.chatTemplate.encode(c.messages, with: lm.tokenizer, addGenerationPrompt: c.addGenerationPrompt)
            #expect(encoding.ids == lm.tokenizer.encode(c.text), "case \(i)")
        }
    }

    @Test func jinjaWithoutChatMLOrWithoutADefaultSystemTurn() {
        #expect(ChatTemplate(jinja: "{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}") == nil)
        let plainChatML = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"
        #expect(ChatTemplate(jinja: plainChatML) == .chatML)
        // Qwen2.5's layout: the default system turn in an else branch, escapes written as \n.
        let qwen = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
            + "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
        #expect(ChatTemplate(jinja: qwen)?.defaultSystemPrompt == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        // An empty conversation gets no system turn, as the template's loop does not run.
        #expect(ChatTemplate.smolLM2.render([], addGenerationPrompt: true) == "<|im_start|>assistant\n")
    }
}
