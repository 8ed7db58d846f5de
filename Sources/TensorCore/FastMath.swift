import RealModule

// Vectorizable approximations for hot loops. libm's expf/tanhf are opaque calls that stop the loop
// vectorizer; these are straight-line float and integer arithmetic that it turns into SIMD code.

/// e^x with a relative error below 2e-7 on [-87, 88]; 0 below -87.3 (and for -inf), e^88 above 88.
@inline(__always)
func fastExp(_ input: Float) -> Float {
    let x = min(max(input, -87.0), 88.0)
    // x = n ln2 + r with |r| <= ln2/2; n rounded by the 1.5 * 2^23 trick (no rounding instruction).
    let magic: Float = 12_582_912.0
    let shifted = x * 1.442_695_04 + magic
    let n = shifted - magic
    let r = x - n * 0.693_145_751_953_125 - n * 1.428_606_765_330_187e-6
    // Minimax polynomial for e^r on that interval (the Cephes expf coefficients).
    var p: Float = 1.987_569_150_0e-4
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    p = p * r * r + r + 1
    // 2^n from the integer that the magic addition left in the low mantissa bits.
    let scaleBits = (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23
    let y = p * Float(bitPattern: scaleBits)
    return input < -87.3 ? 0 : y
}

/// 1 / (1 + e^-x).
@inline(__always)
func fastSigmoid(_ x: Float) -> Float { 1 / (1 + fastExp(-x)) }

/// tanh(x) through the sigmoid: 2σ(2x) - 1.
@inline(__always)
func fastTanh(_ x: Float) -> Float { 2 / (1 + fastExp(-2 * x)) - 1 }

/// √(2/π), the GELU tanh-approximation constant.
let geluK: Float = 0.797_884_560_8
/// The cubic coefficient of the GELU tanh approximation.
let geluC: Float = 0.044_715

/// dst[i] += src[i].
func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    parallelFor(n, grain: elementGrain) { _, lo, hi in
        var i = lo
        while i < hi { dst[i] += src[i]; i &+= 1 }
    }
}

/// dst[i] = or += src[i] * s.
@inline(__always)
func storeScaled(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ s: Float, _ n: Int,
                 accumulate: Bool) {
    parallelFor(n, grain: elementGrain) { _, lo, hi in
        var i = lo
        if accumulate {
            while i < hi { dst[i] += src[i] * s; i &+= 1 }
        } else {
            while i < hi { dst[i] = src[i] * s; i &+= 1 }
        }
    }
}

/// Σ x[i] with a vectorized (reassociated) reduction.
@inline(__always)
func relaxedSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    var i = 0
    while i < n { s = Relaxed.sum(s, x[i]); i &+= 1 }
    return s
}

/// Σ x[i] y[i] with a vectorized reduction.
@inline(__always)
func relaxedDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    var i = 0
    while i < n { s = Relaxed.multiplyAdd(x[i], y[i], s); i &+= 1 }
    return s
}

/// max over x[0..<n] (n > 0).
@inline(__always)
func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    var i = 0
    while i < n { m = max(m, x[i]); i &+= 1 }
    return m
}
