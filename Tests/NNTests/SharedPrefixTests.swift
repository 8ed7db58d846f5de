import Foundation
import Testing
import NN
import TensorCore

@Suite struct SharedPrefixTests {
    /// 5 rows over 2 left-padded prefixes of length 6 (one padded by 2), suffixes of 4 with a pad
    /// at the end of row 3: the shared forward equals the plain forward of the concatenated rows,
    /// in values and in every parameter's gradient.
    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func sharedPrefixesGiveThePlainForwardAndGradients(name: String) throws {
        let model = try Fixture(name).model
        let V = Int32(model.config.vocabSize)
        let P = 6, R = 4, U = 2, B = 5
        let prefixes: [[Int32]] = [[0, 0, 7, 8, 9, 10], [3, 14, 15, 9, 2, 6]]
        let prefixMask: [[Float]] = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]
        let prefixOf = [0, 1, 0, 1, 1]
        let suffixes: [[Int32]] = (0..<B).map { b in (0..<R).map { t in Int32((b * 7 + t * 5 + 1) % Int(V)) } }
        var suffixMask = [[Float]](repeating: [1, 1, 1, 1], count: B)
        suffixMask[3][3] = 0
        // Positions as the plain path counts them: real tokens before each position.
        func positions(_ mask: [Float]) -> [Int32] {
            var seen: Int32 = 0
            return mask.map { m in defer { if m != 0 { seen += 1 } }; return seen }
        }
        var fullIds: [Int32] = [], fullMask: [Float] = [], fullPos: [Int32] = []
        var sPos: [Int32] = []
        for b in 0..<B {
            let mask = prefixMask[prefixOf[b]] + suffixMask[b]
            let pos = positions(mask)
            fullIds += prefixes[prefixOf[b]] + suffixes[b]
            fullMask += mask
            fullPos += pos
            sPos += pos[P...]
        }
        let pPos = prefixMask.flatMap { positions($0) }

        func loss(_ h: Tensor) -> Tensor {
            // A scalar that reads every state through the LM head.
            let logits = model.logits(hidden: h)
            return (logits * logits).mean()
        }
        model.arena.zeroGrad()
        let plain = model.hiddenStates(ids: fullIds, batch: B, length: P + R, attentionMask: fullMask, positions: fullPos)
        let plainSuffix = plain.slice(axis: 1, P..<(P + R))
        let plainLast = plain.slice(axis: 1, (P - 1)..<P)
        loss(concat([plainLast, plainSuffix], axis: 1)).backward()
        let plainGrads = model.gradientDict()
        model.arena.zeroGrad()

        let (hp, hs) = model.sharedPrefixHiddenStates(prefixIds: prefixes.flatMap { $0 }, prefixMask: prefixMask.flatMap { $0 },
                                                      prefixPositions: pPos, prefixRows: U, prefixLength: P,
                                                      suffixIds: suffixes.flatMap { $0 }, suffixMask: suffixMask.flatMap { $0 },
                                                      suffixPositions: sPos, rows: B, suffixLength: R, prefixOf: prefixOf)
        #expect(hp.shape == [U, P, model.config.hiddenSize] && hs.shape == [B, R, model.config.hiddenSize])
        let C = model.config.hiddenSize
        let last = embedding(hp.slice(axis: 1, (P - 1)..<P).reshaped([U, C]), ids: prefixOf.map { Int32($0) }).reshaped([B, 1, C])
        loss(concat([last, hs], axis: 1)).backward()
        let sharedGrads = model.gradientDict()
        model.arena.zeroGrad()

        // Suffix states, except the padded position (its query is garbage either way, but finite).
        for b in 0..<B {
            for t in 0..<R where suffixMask[b][t] != 0 {
                let a = Array(hs.values[((b * R + t) * C)..<((b * R + t + 1) * C)])
                let e = Array(plainSuffix.values[((b * R + t) * C)..<((b * R + t + 1) * C)])
                let r = worstError(a, e, abs: 1e-4, rel: 1e-4)
                #expect(r.ok, "\(name) row \(b) position \(t): \(r.detail)")
            }
        }
        let lr = worstError(last.values, plainLast.values, abs: 1e-4, rel: 1e-4)
        #expect(lr.ok, "\(name) last prefix states: \(lr.detail)")
        #expect(sharedGrads.count == plainGrads.count && !plainGrads.isEmpty)
        for (key, g) in plainGrads {
            guard let s = sharedGrads[key] else {
                Issue.record("\(name): no shared gradient for \(key)")
                continue
            }
            let r = worstError(s.values, g.values, abs: 1e-5, rel: 1e-3)
            #expect(r.ok, "\(name) grad \(key): \(r.detail)")
        }
    }
}
