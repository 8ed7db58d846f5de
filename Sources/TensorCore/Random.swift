import Foundation

/// A seeded random number generator (xoshiro256**), passed explicitly: same seed, same numbers.
///
/// It is a value type whose whole state is four words, so a trainer can checkpoint it and resume
/// the exact stream. `split()` derives an independent generator for a sub-task (data shuffling,
/// dropout, sampling) without disturbing the parent's stream more than one draw.
public struct RNG: RandomNumberGenerator, Codable, Sendable, Equatable {
    /// The generator state; never all zero.
    public private(set) var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator whose state is expanded from `seed` with SplitMix64.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            return RNG.mix(x)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    /// Stream `stream` of `seed`: generators of different streams are unrelated, so each consumer
    /// of one seed (each generated file, each epoch's shuffle) draws its own numbers.
    public init(seed: UInt64, stream: UInt64) {
        self.init(seed: RNG.mix(seed ^ RNG.mix(stream)))
    }

    /// SplitMix64's output function (Steele, Lea and Flood 2014): a bijective scramble of 64 bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func uniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Standard normal (Box-Muller; one of the pair is discarded so the state stays four words).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * 0x1p-53, 0x1p-60)
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<n, without modulo bias (Lemire's multiply-shift with rejection).
    ///
    /// Rein's own loop rather than the standard library's `next(upperBound:)`, whose algorithm is
    /// not promised to stay, so a seed gives the same numbers on every Swift version.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below: \(n))")
        let bound = UInt64(n)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return Int(product.high)
    }

    /// An independent generator derived from this one's next draw.
    public mutating func split() -> RNG { RNG(seed: next()) }
}

extension Tensor {
    /// Normal(mean, std) entries.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RNG,
                             requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let p = t.data
        for i in 0..<t.count { p[i] = mean + std * rng.normal() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform [lo, hi) entries.
    public static func uniform(_ shape: [Int], _ lo: Float = 0, _ hi: Float = 1, rng: inout RNG,
                               requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let p = t.data
        for i in 0..<t.count { p[i] = rng.uniform(lo, hi) }
        t.requiresGrad = requiresGrad
        return t
    }
}
