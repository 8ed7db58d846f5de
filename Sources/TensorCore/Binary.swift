import Foundation

// Binary elementwise ops with trailing-dimension broadcasting: the smaller operand's shape must be
// a suffix of the larger one's (a bias row [C] against activations [B, T, C]), or it is a single
// element. The smaller operand's gradient sums over the repeated rows.

protocol BinaryKernel {
    static func forward(_ a: Float, _ b: Float) -> Float
    /// d out / d a, times g.
    static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float
    /// d out / d b, times g.
    static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float
}

enum AddKernel: BinaryKernel {
    @inline(__always) static func forward(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float { g }
    @inline(__always) static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float { g }
}
enum SubKernel: BinaryKernel {
    @inline(__always) static func forward(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float { g }
    @inline(__always) static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float { -g }
}
enum MulKernel: BinaryKernel {
    @inline(__always) static func forward(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float { g * b }
    @inline(__always) static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float { g * a }
}
enum DivKernel: BinaryKernel {
    @inline(__always) static func forward(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float { g / b }
    @inline(__always) static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float { -g * a / (b * b) }
}
/// Ties send the gradient to `a`, as torch does for its first argument.
enum MinKernel: BinaryKernel {
    @inline(__always) static func forward(_ a: Float, _ b: Float) -> Float { min(a, b) }
    @inline(__always) static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float { a <= b ? g : 0 }
    @inline(__always) static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float { a <= b ? 0 : g }
}
enum MaxKernel: BinaryKernel {
    @inline(__always) static func forward(_ a: Float, _ b: Float) -> Float { max(a, b) }
    @inline(__always) static func gradA(_ a: Float, _ b: Float, _ g: Float) -> Float { a >= b ? g : 0 }
    @inline(__always) static func gradB(_ a: Float, _ b: Float, _ g: Float) -> Float { a >= b ? 0 : g }
}

/// The output shape of a broadcast between `a` and `b`, or a precondition failure naming both.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    if a == b { return a }
    let (long, short) = a.count >= b.count ? (a, b) : (b, a)
    if Tensor.elementCount(short) == 1 { return long }
    precondition(Array(long.suffix(short.count)) == short,
                 "cannot broadcast shapes \(a) and \(b): the smaller must be a trailing suffix")
    return long
}

/// Element i of the output reads a[i % ma] and b[i % mb]; one of ma, mb equals n.
@inline(__always)
func broadcastLoop(n: Int, ma: Int, mb: Int, lo: Int, hi: Int, _ body: (Int, Int, Int) -> Void) {
    if ma == n && mb == n {
        var i = lo
        while i < hi { body(i, i, i); i &+= 1 }
    } else if mb == 1 {
        var i = lo
        while i < hi { body(i, i, 0); i &+= 1 }
    } else if ma == 1 {
        var i = lo
        while i < hi { body(i, 0, i); i &+= 1 }
    } else {
        // Row-aligned chunks: lo and hi are multiples of the period.
        let m = min(ma, mb)
        var r = lo
        while r < hi {
            var j = 0
            if ma == m {
                while j < m { body(r &+ j, j, r &+ j); j &+= 1 }
            } else {
                while j < m { body(r &+ j, r &+ j, j); j &+= 1 }
            }
            r &+= m
        }
    }
}

func binary<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _: K.Type) -> Tensor {
    let shape = broadcastShape(a.shape, b.shape)
    let out = Tensor(uninitialized: shape)
    let n = out.count, ma = a.count, mb = b.count
    let ap = a.data, bp = b.data, op = out.data
    let period = min(ma, mb) == n ? 1 : min(ma, mb)
    parallelFor(n / period, grain: max(1, elementGrain / period)) { _, lo, hi in
        broadcastLoop(n: n, ma: ma, mb: mb, lo: lo &* period, hi: hi &* period) { i, ia, ib in
            op[i] = K.forward(ap[ia], bp[ib])
        }
    }
    record(out, inputs: [a, b]) { _, g in
        let gp = g.data, ap = a.data, bp = b.data
        for (side, t) in [(0, a), (1, b)] where t.requiresGrad {
            if t.count == n {
                let (d, acc) = t.gradBuffer()
                parallelFor(n / period, grain: max(1, elementGrain / period)) { _, lo, hi in
                    broadcastLoop(n: n, ma: ma, mb: mb, lo: lo &* period, hi: hi &* period) { i, ia, ib in
                        let v = side == 0 ? K.gradA(ap[ia], bp[ib], gp[i]) : K.gradB(ap[ia], bp[ib], gp[i])
                        d[i] = acc ? d[i] + v : v
                    }
                }
            } else {
                // The broadcast operand: per-element terms summed over the rows they repeat in.
                let m = t.count
                let sums = Tensor(shape: [m], repeating: 0)
                let sp = sums.data
                broadcastLoop(n: n, ma: ma, mb: mb, lo: 0, hi: n) { i, ia, ib in
                    let v = side == 0 ? K.gradA(ap[ia], bp[ib], gp[i]) : K.gradB(ap[ia], bp[ib], gp[i])
                    sp[side == 0 ? ia : ib] += v
                }
                t.accumulateGrad(alias: sums.reshaped(t.shape))
            }
        }
    }
    return out
}

public func + (a: Tensor, b: Tensor) -> Tensor { binary(a, b, AddKernel.self) }
public func - (a: Tensor, b: Tensor) -> Tensor { binary(a, b, SubKernel.self) }
public func * (a: Tensor, b: Tensor) -> Tensor { binary(a, b, MulKernel.self) }
public func / (a: Tensor, b: Tensor) -> Tensor { binary(a, b, DivKernel.self) }
/// Elementwise minimum (ties: the gradient goes to `a`).
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, MinKernel.self) }
/// Elementwise maximum (ties: the gradient goes to `a`).
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, MaxKernel.self) }

/// Picks `a` where `condition` is nonzero and `b` elsewhere; all three have the same shape.
/// The condition carries no gradient.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(condition.shape == a.shape && a.shape == b.shape,
                 "where: shapes \(condition.shape), \(a.shape), \(b.shape) differ")
    let out = Tensor(uninitialized: a.shape)
    let cp = condition.data, ap = a.data, bp = b.data, op = out.data
    let n = a.count
    parallelFor(n, grain: elementGrain) { _, lo, hi in
        var i = lo
        while i < hi { op[i] = cp[i] != 0 ? ap[i] : bp[i]; i &+= 1 }
    }
    record(out, inputs: [a, b]) { _, g in
        let gp = g.data, cp = condition.data
        for (pickA, t) in [(true, a), (false, b)] where t.requiresGrad {
            let (d, acc) = t.gradBuffer()
            parallelFor(n, grain: elementGrain) { _, lo, hi in
                var i = lo
                while i < hi {
                    let v: Float = (cp[i] != 0) == pickA ? gp[i] : 0
                    d[i] = acc ? d[i] + v : v
                    i &+= 1
                }
            }
        }
    }
    return out
}
