import Foundation
import NN
import TensorCore
import Yams

/// Reading the models a stage names by role: `stage:ID`, `hf:PATH`, `gguf:PATH`, a bare path,
/// `{from: REF}`, or (where the role allows) a fresh model `{init: {...}, tokenizer: REF}`.
extension Checker {
    /// Reads role `role` of a stage from `node`; list roles read each element as `KEY.N`.
    mutating func readRole(_ role: ModelRole, _ node: Node, _ keyPath: String, draft: inout Draft) {
        if role.isList {
            guard let list = node.sequence, !list.isEmpty else {
                report(node, keyPath, "expected a list of models (stage:ID, hf:PATH or gguf:PATH)")
                return
            }
            for (i, element) in list.enumerated() {
                if let source = readModel(element, "\(keyPath)[\(i)]", role: role, draft: &draft) {
                    draft.models["\(role.key).\(i)"] = source
                }
            }
            return
        }
        if let source = readModel(node, keyPath, role: role, draft: &draft) { draft.models[role.key] = source }
    }

    /// One model reference of `role`.
    mutating func readModel(_ node: Node, _ keyPath: String, role: ModelRole, draft: inout Draft) -> ModelSource? {
        var refNode = node
        let forms = "a path, stage:ID, hf:PATH, gguf:PATH or {from: REF}" + (role.allowsInit ? " or {init: {model_type: ..., ...}, tokenizer: REF}" : "")
        if let map = node.mapping {
            if role.allowsInit, map["init"] != nil || map["tokenizer"] != nil { return readInit(map, node, keyPath, draft: &draft) }
            let valid = role.allowsInit ? ["from", "init", "tokenizer"] : ["from"]
            for (k, _) in map where k.string != "from" {
                report(k, "\(keyPath).\(k.string ?? "")", unknownKey(k.string ?? "", valid: valid))
            }
            guard let from = map["from"] else {
                report(node, keyPath, "expected \(forms)")
                return nil
            }
            refNode = from
        }
        guard let text = refNode.scalar?.string, !text.isEmpty else {
            report(refNode, keyPath, "expected \(forms), got \(show(refNode))")
            return nil
        }
        let source: ModelSource
        if let ref = Self.parseRef(text) {
            draft.refs.append(Ref(target: ref.id, file: ref.file, node: refNode, keyPath: keyPath, use: .model(role)))
            return .stage(ref.id)
        } else if text.hasPrefix("hf:") {
            source = .hf(String(text.dropFirst(3)))
        } else if text.hasPrefix("gguf:") {
            source = .gguf(String(text.dropFirst(5)))
        } else if node.mapping != nil {
            report(refNode, keyPath, "unknown reference '\(text)' (use stage:ID, hf:PATH or gguf:PATH)")
            return nil
        } else {
            source = .path(text)
        }
        let path: String
        switch source {
        case .hf(let p), .gguf(let p), .path(let p): path = p
        case .stage, .initialize: return source
        }
        let url = Recipe.resolve(path, against: base)
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            report(refNode, keyPath, "model not found: \(path)" + Self.assetsHint(path))
        } else if case .hf = source, !isDirectory.boolValue {
            report(refNode, keyPath, "hf:\(path) must be a Hugging Face model directory")
        } else if role.needsScoreHead, !Self.holdsRewardModel(url, isDirectory: isDirectory.boolValue) {
            report(refNode, keyPath, "\(path) is not a reward model (\(role.key) needs a reward stage or a directory whose weights have a score head)")
        }
        return source
    }

    /// Whether a model directory's weights include a score head (`score.weight`).
    static func holdsRewardModel(_ url: URL, isDirectory: Bool) -> Bool {
        guard isDirectory else { return false }
        let weights = url.appendingPathComponent("model.safetensors")
        guard let file = try? SafetensorsFile(url: weights) else {
            return FileManager.default.fileExists(atPath: url.appendingPathComponent("reward_stats.json").path)
        }
        return file.contains("score.weight")
    }

    /// " (run scripts/fetch-assets.sh ...)" for a missing file under assets/.
    static func assetsHint(_ path: String) -> String {
        path.hasPrefix("assets/") || path.contains("/assets/")
            ? " (run scripts/fetch-assets.sh to download the pinned files into assets/)" : ""
    }

    /// `{init: {config.json keys}, tokenizer: REF}`: a model trained from scratch.
    mutating func readInit(_ map: Node.Mapping, _ node: Node, _ keyPath: String, draft: inout Draft) -> ModelSource? {
        for (k, _) in map where !["init", "tokenizer"].contains(k.string ?? "") {
            report(k, "\(keyPath).\(k.string ?? "")", unknownKey(k.string ?? "", valid: ["init", "tokenizer"]))
        }
        var configJSON: String?
        if let initNode = map["init"] {
            if initNode.mapping != nil, let text = try? Yams.serialize(node: initNode),
               let object = try? Yams.load(yaml: text) as? [String: Any],
               let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                var probe = object
                probe["vocab_size"] = probe["vocab_size"] ?? 256
                if object["vocab_size"] != nil {
                    report(initNode, "\(keyPath).init.vocab_size", "set by the tokenizer; remove it")
                } else if let probeData = try? JSONSerialization.data(withJSONObject: probe) {
                    do { _ = try ModelConfig(huggingFaceJSON: probeData, file: "init") } catch {
                        let reason = "\(error)".replacingOccurrences(of: "init: ", with: "")
                        report(initNode, "\(keyPath).init", reason)
                    }
                }
                configJSON = String(decoding: data, as: UTF8.self)
            } else {
                report(initNode, "\(keyPath).init", "expected a mapping of config.json keys (model_type, n_layer, n_embd, ...)")
            }
        } else {
            report(node, "\(keyPath).init", "required with `tokenizer` (the architecture of the fresh model)")
        }
        var tokenizer: String?
        if let tokNode = map["tokenizer"] {
            if let text = tokNode.scalar?.string, !text.isEmpty {
                tokenizer = text
                if let ref = Self.parseRef(text) {
                    draft.refs.append(Ref(target: ref.id, file: ref.file, node: tokNode, keyPath: "\(keyPath).tokenizer", use: .tokenizer))
                } else if !FileManager.default.fileExists(atPath: Recipe.resolve(text, against: base).path) {
                    report(tokNode, "\(keyPath).tokenizer", "tokenizer not found: \(text)")
                }
            } else {
                report(tokNode, "\(keyPath).tokenizer", "expected stage:ID or a tokenizer path, got \(show(tokNode))")
            }
        } else {
            report(node, "\(keyPath).tokenizer", "required with `init` (stage:ID of a tokenizer stage, or a tokenizer path)")
        }
        guard let configJSON, let tokenizer else { return nil }
        return .initialize(config: configJSON, tokenizer: tokenizer)
    }
}
