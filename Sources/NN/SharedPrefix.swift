import TensorCore

extension DecoderModel {
    /// Final hidden states of rows that continue shared prefixes, each prefix run once: the
    /// prompt of `num_generations` samples goes through the layers once, not once per sample.
    ///
    /// Row `b` is prefix `prefixOf[b]` (`[U, P]`, left-padded) followed by its own suffix (`[B, R]`):
    /// the same as `hiddenStates` on the concatenated `[B, P + R]` rows (the suffix attends to its
    /// prefix's keys and its own, causally; a masked key is skipped), up to float32 summation
    /// order. Gradients from every row's suffix reach the shared prefix (they are summed).
    ///
    /// - Parameters:
    ///   - prefixIds, prefixMask, prefixPositions: U·P entries each.
    ///   - suffixIds, suffixMask, suffixPositions: B·R entries each (positions continue the prefix's).
    ///   - prefixOf: B indices into the prefixes.
    /// - Returns: prefix states `[U, P, C]` and suffix states `[B, R, C]`.
    public func sharedPrefixHiddenStates(prefixIds: [Int32], prefixMask: [Float], prefixPositions: [Int32], prefixRows U: Int,
                                         prefixLength P: Int, suffixIds: [Int32], suffixMask: [Float], suffixPositions: [Int32],
                                         rows B: Int, suffixLength R: Int, prefixOf: [Int]) -> (prefix: Tensor, suffix: Tensor) {
        precondition(prefixIds.count == U * P && prefixMask.count == U * P && prefixPositions.count == U * P,
                     "sharedPrefixHiddenStates: prefix inputs for \(U) x \(P)")
        precondition(suffixIds.count == B * R && suffixMask.count == B * R && suffixPositions.count == B * R
                     && prefixOf.count == B && prefixOf.allSatisfy { $0 >= 0 && $0 < U },
                     "sharedPrefixHiddenStates: suffix inputs for \(B) x \(R) over \(U) prefixes")
        let C = config.hiddenSize, eps = Float(config.normEps), H = config.heads, Hkv = config.kvHeads
        let lowPrecision = usesInferenceWeights(generating: false)
        func project(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
            self.project(x, weight: weight, bias: bias, lowPrecision: lowPrecision)
        }
        func embedded(_ ids: [Int32], _ pos: [Int32], _ n: Int, _ T: Int) -> Tensor {
            var h = embedding(embed, ids: ids)
            if let positionEmbed { h = h + embedding(positionEmbed, ids: pos) }
            return h.reshaped([n, T, C])
        }
        var hp = embedded(prefixIds, prefixPositions, U, P), hs = embedded(suffixIds, suffixPositions, B, R)
        let gather = prefixOf.map { Int32($0) }
        var fullMask = [Float]()
        fullMask.reserveCapacity(B * (P + R))
        for b in 0..<B {
            fullMask += prefixMask[(prefixOf[b] * P)..<((prefixOf[b] + 1) * P)]
            fullMask += suffixMask[(b * R)..<((b + 1) * R)]
        }
        /// `[U, P, w]` -> `[B, P, w]`, row b a copy of prefix `prefixOf[b]` (the backward sums).
        func expand(_ t: Tensor) -> Tensor {
            let w = t.shape[2]
            return embedding(t.reshaped([U, P * w]), ids: gather).reshaped([B, P, w])
        }
        func attendBoth(_ q: (Tensor, Tensor), _ k: (Tensor, Tensor), _ v: (Tensor, Tensor)) -> (Tensor, Tensor) {
            let ap = attention(q: q.0, k: k.0, v: v.0, heads: H, kvHeads: Hkv, keyMask: prefixMask)
            let kf = concat([expand(k.0), k.1], axis: 1), vf = concat([expand(v.0), v.1], axis: 1)
            let sp = attention(q: q.1, k: kf, v: vf, heads: H, kvHeads: Hkv, keyMask: fullMask)
            return (ap, sp)
        }
        for blk in blocks {
            switch config.family {
            case .gpt2:
                func qkv(_ h: Tensor) -> (Tensor, Tensor, Tensor) {
                    let a = layerNorm(h, weight: blk.norm1, bias: blk.norm1Bias, eps: eps)
                    let x = project(a, weight: blk.qkv!, bias: blk.qkvBias)
                    return (x.slice(axis: 2, 0..<C), x.slice(axis: 2, C..<(2 * C)), x.slice(axis: 2, (2 * C)..<(3 * C)))
                }
                let (qp, kp, vp) = qkv(hp), (qs, ks, vs) = qkv(hs)
                let (ap, sp) = attendBoth((qp, qs), (kp, ks), (vp, vs))
                func rest(_ h: Tensor, _ att: Tensor) -> Tensor {
                    let h1 = h + project(att, weight: blk.o, bias: blk.oBias)
                    let m = layerNorm(h1, weight: blk.norm2, bias: blk.norm2Bias, eps: eps)
                    return h1 + project(gelu(project(m, weight: blk.up, bias: blk.upBias)), weight: blk.down, bias: blk.downBias)
                }
                hp = rest(hp, ap)
                hs = rest(hs, sp)
            case .llama:
                func qkv(_ h: Tensor, _ pos: [Int32]) -> (Tensor, Tensor, Tensor) {
                    let a = rmsNorm(h, weight: blk.norm1, eps: eps)
                    let q = rope(project(a, weight: blk.q!, bias: blk.qBias), positions: pos, heads: H, table: ropeTable!)
                    let k = rope(project(a, weight: blk.k!, bias: blk.kBias), positions: pos, heads: Hkv, table: ropeTable!)
                    return (q, k, project(a, weight: blk.v!, bias: blk.vBias))
                }
                let (qp, kp, vp) = qkv(hp, prefixPositions), (qs, ks, vs) = qkv(hs, suffixPositions)
                let (ap, sp) = attendBoth((qp, qs), (kp, ks), (vp, vs))
                func rest(_ h: Tensor, _ att: Tensor) -> Tensor {
                    let h1 = h + project(att, weight: blk.o, bias: blk.oBias)
                    let m = rmsNorm(h1, weight: blk.norm2, eps: eps)
                    let gated = silu(project(m, weight: blk.gate!, bias: blk.gateBias)) * project(m, weight: blk.up, bias: blk.upBias)
                    return h1 + project(gated, weight: blk.down, bias: blk.downBias)
                }
                hp = rest(hp, ap)
                hs = rest(hs, sp)
            }
        }
        switch config.family {
        case .gpt2:
            return (layerNorm(hp, weight: finalNorm, bias: finalNormBias, eps: eps),
                    layerNorm(hs, weight: finalNorm, bias: finalNormBias, eps: eps))
        case .llama:
            return (rmsNorm(hp, weight: finalNorm, eps: eps), rmsNorm(hs, weight: finalNorm, eps: eps))
        }
    }
}
