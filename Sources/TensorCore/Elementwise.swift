import Foundation

// Elementwise ops. Each is a pair of kernels: forward y = f(x) and backward dx = g * f'(x), the
// latter written from x, y and g so that neither pass calls a transcendental twice.

/// A unary elementwise function and its derivative.
protocol UnaryKernel {
    static func forward(_ x: Float) -> Float
    /// dx for one element, from the input x, the output y and the output gradient g.
    static func backward(x: Float, y: Float, g: Float) -> Float
}

enum ExpKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { fastExp(x) }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { g * y }
}
enum LogKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { Foundation.log(x) }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { g / x }
}
enum SqrtKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { g * 0.5 / y }
}
enum TanhKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { fastTanh(x) }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { g * (1 - y * y) }
}
enum SigmoidKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { fastSigmoid(x) }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { g * y * (1 - y) }
}
enum LogSigmoidKernel: UnaryKernel {
    // log σ(x) = min(x, 0) - log(1 + e^-|x|): no overflow for large |x|.
    @inline(__always) static func forward(_ x: Float) -> Float {
        min(x, 0) - Foundation.log1p(Foundation.exp(-abs(x)))
    }
    // d/dx log σ(x) = 1 - σ(x) = σ(-x).
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { g * fastSigmoid(-x) }
}
enum ReluKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { max(x, 0) }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float { x > 0 ? g : 0 }
}
enum GeluKernel: UnaryKernel {
    // GPT-2's tanh form: 0.5 x (1 + tanh(u)) = x σ(2u), u = √(2/π)(x + 0.044715 x³).
    @inline(__always) static func forward(_ x: Float) -> Float {
        let u = geluK * (x + geluC * x * x * x)
        return x / (1 + fastExp(-2 * u))
    }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float {
        let x2 = x * x
        let u = geluK * (x + geluC * x2 * x)
        let s = 1 / (1 + fastExp(-2 * u))
        let du = geluK * (1 + 3 * geluC * x2)
        return g * (s + x * s * (1 - s) * 2 * du)
    }
}
enum SiluKernel: UnaryKernel {
    @inline(__always) static func forward(_ x: Float) -> Float { x / (1 + fastExp(-x)) }
    @inline(__always) static func backward(x: Float, y: Float, g: Float) -> Float {
        let s = 1 / (1 + fastExp(-x))
        return g * s * (1 + x * (1 - s))
    }
}

/// y[i] = K.forward(x[i]) over n elements, parallel above the grain.
@inline(__always)
func unaryForward<K: UnaryKernel>(_: K.Type, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                  _ n: Int) {
    parallelFor(n, grain: elementGrain) { _, lo, hi in
        var i = lo
        while i < hi { y[i] = K.forward(x[i]); i &+= 1 }
    }
}

/// dx[i] (= or +=) K.backward(x[i], y[i], g[i]).
@inline(__always)
func unaryBackward<K: UnaryKernel>(_: K.Type, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                   _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int,
                                   accumulate: Bool) {
    parallelFor(n, grain: elementGrain) { _, lo, hi in
        var i = lo
        if accumulate {
            while i < hi { dx[i] += K.backward(x: x[i], y: y[i], g: g[i]); i &+= 1 }
        } else {
            while i < hi { dx[i] = K.backward(x: x[i], y: y[i], g: g[i]); i &+= 1 }
        }
    }
}

func unary<K: UnaryKernel>(_ x: Tensor, _ kernel: K.Type) -> Tensor {
    let out = Tensor(uninitialized: x.shape)
    unaryForward(kernel, x.data, out.data, x.count)
    record(out, inputs: [x]) { out, g in
        let (dx, acc) = x.gradBuffer()
        unaryBackward(kernel, x.data, out.data, g.data, dx, x.count, accumulate: acc)
    }
    return out
}

/// e^x.
public func exp(_ x: Tensor) -> Tensor { unary(x, ExpKernel.self) }
/// Natural logarithm.
public func log(_ x: Tensor) -> Tensor { unary(x, LogKernel.self) }
/// Square root.
public func sqrt(_ x: Tensor) -> Tensor { unary(x, SqrtKernel.self) }
/// Hyperbolic tangent.
public func tanh(_ x: Tensor) -> Tensor { unary(x, TanhKernel.self) }
/// Logistic sigmoid 1 / (1 + e^-x).
public func sigmoid(_ x: Tensor) -> Tensor { unary(x, SigmoidKernel.self) }
/// log σ(x), stable for large |x| (the DPO and reward losses).
public func logSigmoid(_ x: Tensor) -> Tensor { unary(x, LogSigmoidKernel.self) }
/// max(x, 0).
public func relu(_ x: Tensor) -> Tensor { unary(x, ReluKernel.self) }
/// GELU, tanh approximation (GPT-2's `gelu_new`).
public func gelu(_ x: Tensor) -> Tensor { unary(x, GeluKernel.self) }
/// SiLU (swish): x σ(x), Llama's MLP activation.
public func silu(_ x: Tensor) -> Tensor { unary(x, SiluKernel.self) }

// MARK: Affine maps with a constant

/// x * s + t elementwise, for constants s and t.
public func affine(_ x: Tensor, scale s: Float, shift t: Float = 0) -> Tensor {
    let out = Tensor(uninitialized: x.shape)
    let xp = x.data, yp = out.data
    parallelFor(x.count, grain: elementGrain) { _, lo, hi in
        var i = lo
        while i < hi { yp[i] = xp[i] * s + t; i &+= 1 }
    }
    record(out, inputs: [x]) { _, g in
        let (dx, acc) = x.gradBuffer()
        storeScaled(dx, g.data, s, x.count, accumulate: acc)
    }
    return out
}

/// x * s.
public func scale(_ x: Tensor, _ s: Float) -> Tensor { affine(x, scale: s) }
/// -x.
public prefix func - (x: Tensor) -> Tensor { affine(x, scale: -1) }
public func * (x: Tensor, s: Float) -> Tensor { affine(x, scale: s) }
public func * (s: Float, x: Tensor) -> Tensor { affine(x, scale: s) }
public func / (x: Tensor, s: Float) -> Tensor { affine(x, scale: 1 / s) }
public func + (x: Tensor, t: Float) -> Tensor { affine(x, scale: 1, shift: t) }
public func + (t: Float, x: Tensor) -> Tensor { affine(x, scale: 1, shift: t) }
public func - (x: Tensor, t: Float) -> Tensor { affine(x, scale: 1, shift: -t) }
public func - (t: Float, x: Tensor) -> Tensor { affine(x, scale: -1, shift: t) }

/// x clamped to [lo, hi]; the gradient passes where lo <= x <= hi (torch's rule).
public func clamp(_ x: Tensor, min lo: Float, max hi: Float) -> Tensor {
    precondition(lo <= hi, "clamp with min \(lo) > max \(hi)")
    let out = Tensor(uninitialized: x.shape)
    let xp = x.data, yp = out.data
    parallelFor(x.count, grain: elementGrain) { _, a, b in
        var i = a
        while i < b { yp[i] = min(max(xp[i], lo), hi); i &+= 1 }
    }
    record(out, inputs: [x]) { _, g in
        let (dx, acc) = x.gradBuffer()
        let gp = g.data, xp = x.data
        parallelFor(x.count, grain: elementGrain) { _, a, b in
            var i = a
            while i < b {
                let v = xp[i] >= lo && xp[i] <= hi ? gp[i] : 0
                dx[i] = acc ? dx[i] + v : v
                i &+= 1
            }
        }
    }
    return out
}
