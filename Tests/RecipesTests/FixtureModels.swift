import Foundation

/// The test fixtures folder (`Tests/Fixtures`).
let recipesTestFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

/// Copies a Hugging Face fixture model (`hf-tiny-llama`, `hf-tiny-gpt2`) into `directory`, which is created.
func copyFixtureModel(_ name: String = "hf-tiny-llama", to directory: URL) throws {
    let fm = FileManager.default
    try fm.createDirectory(at: directory, withIntermediateDirectories: true)
    let source = recipesTestFixtures.appendingPathComponent(name)
    for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
        try fm.copyItem(at: source.appendingPathComponent(file), to: directory.appendingPathComponent(file))
    }
}

/// "Write about the sea:", "Write about a red fox:", ...: the topics of the prompts the stage tests sample.
let fixturePromptTopics = ["the sea", "a red fox", "rain", "old books", "the moon", "bread", "a small town", "winter",
                           "music", "a garden", "trains", "the river", "clocks", "a letter", "mountains", "coffee"]
