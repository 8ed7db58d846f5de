import Foundation

/// A Float32 tensor: contiguous, row-major, with a shape.
///
/// Tensors are reference types so that the autodiff graph can point at them. An op whose input
/// requires a gradient records a backward closure on its output; ``backward()`` from a scalar walks
/// the graph in reverse topological order. Reshapes are views sharing the storage.
///
/// ```swift
/// let w = Tensor(shape: [3, 2], values: [1, 2, 3, 4, 5, 6], requiresGrad: true)
/// let loss = matmul(x, w).sum()
/// loss.backward()
/// print(w.grad!.values)
/// ```
public final class Tensor: @unchecked Sendable {
    /// Sizes of each dimension, outermost first.
    public let shape: [Int]
    /// Number of elements (the product of `shape`).
    public let count: Int
    /// The buffer this tensor reads; views share it.
    public let storage: TensorStorage
    /// Offset of the first element in `storage`.
    public let offset: Int

    /// Whether gradients flow into this tensor.
    public internal(set) var requiresGrad: Bool
    /// The accumulated gradient, same shape. Parameters keep theirs in the arena.
    public internal(set) var grad: Tensor?
    /// Parameters' gradients live in an arena and must always be accumulated into, never replaced.
    var gradIsPinned = false
    /// How this tensor was computed, if it needs a backward.
    var node: GradNode?
    /// A name for error messages and checkpoints (parameters carry their HF key).
    public var name: String?

    // MARK: Creation

    /// A tensor whose elements are unspecified (taken from the pool without clearing).
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.count = Tensor.elementCount(shape)
        self.storage = TensorStorage(uninitializedCount: count)
        self.offset = 0
        self.requiresGrad = false
    }

    /// A view of `storage` from `offset`.
    public init(shape: [Int], storage: TensorStorage, offset: Int = 0, requiresGrad: Bool = false) {
        let n = Tensor.elementCount(shape)
        precondition(offset >= 0 && offset + n <= storage.capacity, "view outside its storage")
        self.shape = shape
        self.count = n
        self.storage = storage
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// A tensor holding `values` in row-major order.
    public convenience init(shape: [Int], values: [Float], requiresGrad: Bool = false) {
        precondition(values.count == Tensor.elementCount(shape),
                     "\(values.count) values for shape \(shape)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
        self.requiresGrad = requiresGrad
    }

    /// A tensor filled with `value`.
    public convenience init(shape: [Int], repeating value: Float, requiresGrad: Bool = false) {
        self.init(uninitialized: shape)
        data.update(repeating: value, count: count)
        self.requiresGrad = requiresGrad
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, repeating: 0, requiresGrad: requiresGrad)
    }

    /// A scalar (shape `[]`).
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init(shape: [], values: [scalar], requiresGrad: requiresGrad)
    }

    static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "negative dimension in \(shape)")
            n *= d
        }
        return n
    }

    // MARK: Access

    /// Pointer to the first element. Valid while the tensor lives; read it at op time.
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Size of the last dimension (1 for a scalar).
    public var lastDim: Int { shape.last ?? 1 }

    /// The elements, copied out in row-major order.
    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item of a tensor with \(count) elements")
        return data[0]
    }

    /// Element at a multi-index (slow; for tests and printing).
    public subscript(_ index: Int...) -> Float {
        get { data[flatIndex(index)] }
        set { data[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "index \(index) out of range for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }

    // MARK: Views

    /// The same elements under another shape, sharing storage. One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().reduce(1) { $1.offset == inferred ? $0 : $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = count / known
        }
        precondition(Tensor.elementCount(resolved) == count, "cannot reshape \(shape) to \(newShape)")
        let out = Tensor(shape: resolved, storage: storage, offset: offset)
        record(out, inputs: [self]) { _, g in
            self.accumulateGrad(alias: g.reshaped(self.shape))
        }
        return out
    }

    /// A tensor sharing this one's storage that no gradient flows through.
    public func detached() -> Tensor {
        Tensor(shape: shape, storage: storage, offset: offset)
    }

    /// A fresh copy of the elements (no gradient link).
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.data.update(from: data, count: count)
        return out
    }

    // MARK: Autodiff

    /// Makes this leaf tensor collect gradients.
    public func setRequiresGrad(_ flag: Bool = true) {
        precondition(node == nil, "requiresGrad is set on leaves; detach the tensor first")
        requiresGrad = flag
    }

    /// Forgets the accumulated gradient (pinned gradients are zeroed in place).
    public func zeroGrad() {
        if gradIsPinned, let g = grad { g.data.update(repeating: 0, count: g.count) } else { grad = nil }
    }

    /// Backpropagates from this scalar: every tensor it depends on that requires a gradient gets
    /// d(self)/d(tensor) added to its `grad`. The graph is released as it is walked; intermediate
    /// tensors do not keep gradients.
    public func backward() {
        precondition(count == 1, "backward() needs a scalar, got shape \(shape)")
        backward(gradient: Tensor(shape: shape, repeating: 1))
    }

    /// Backpropagates a given output gradient (same shape as self): a vector-Jacobian product.
    public func backward(gradient: Tensor) {
        precondition(gradient.count == count, "backward: gradient \(gradient.shape) for shape \(shape)")
        guard requiresGrad else { return }
        let order = topologicalOrder()
        // A computed root only reads its gradient, so the caller's tensor can be used as is.
        if node != nil { accumulateGrad(alias: gradient) } else { accumulateGrad(gradient) }
        for t in order.reversed() {
            guard let node = t.node else { continue }
            if let g = t.grad { node.backward(t, g) }
            t.node = nil
            t.grad = nil
        }
    }

    /// Tensors reachable from self through recorded ops, each after its inputs.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            guard visited.insert(ObjectIdentifier(t)).inserted else { continue }
            stack.append((t, true))
            if let node = t.node {
                for input in node.inputs where input.requiresGrad
                    && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        return order
    }

    /// Adds `g` (same element count) into this tensor's gradient.
    func accumulateGrad(_ g: Tensor) {
        precondition(g.count == count, "gradient of \(g.count) elements for shape \(shape)")
        if let existing = grad {
            addInPlace(existing.data, g.data, count)
        } else {
            let fresh = Tensor(uninitialized: shape)
            fresh.data.update(from: g.data, count: count)
            grad = fresh
        }
    }

    /// Like ``accumulateGrad(_:)`` but may adopt `g` itself when there is nothing to add to; the
    /// caller must not reuse `g`.
    func accumulateGrad(alias g: Tensor) {
        if grad == nil && !gradIsPinned && g.shape == shape { grad = g } else { accumulateGrad(g) }
    }

    /// The gradient buffer for a backward kernel, and whether the kernel must add to it (`true`) or
    /// may overwrite it (`false`, a fresh uninitialized buffer).
    func gradBuffer() -> (UnsafeMutablePointer<Float>, accumulate: Bool) {
        if let g = grad { return (g.data, true) }
        let fresh = Tensor(uninitialized: shape)
        grad = fresh
        return (fresh.data, false)
    }

    /// Attaches `grad` storage that backward accumulates into (the parameter arena's).
    public func pinGrad(_ g: Tensor) {
        precondition(g.count == count)
        grad = g
        gradIsPinned = true
    }
}

/// One recorded op: its inputs and how to push the output's gradient into them.
final class GradNode {
    let inputs: [Tensor]
    /// Called with the output tensor and its gradient.
    let backward: (Tensor, Tensor) -> Void
    init(inputs: [Tensor], backward: @escaping (Tensor, Tensor) -> Void) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether ops record their backward. Off inside ``Autograd/withoutGrad(_:)``.
public enum Autograd {
    @TaskLocal static var isEnabled = true

    /// Runs `body` with recording off: inference paths build no graph and keep no activations.
    public static func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $isEnabled.withValue(false, operation: body)
    }

    /// Whether ops currently record.
    public static var isRecording: Bool { isEnabled }
}

/// Records `backward` on `out` when grad mode is on and an input requires a gradient.
@inline(__always)
func record(_ out: Tensor, inputs: [Tensor], backward: @escaping (Tensor, Tensor) -> Void) {
    guard inputs.contains(where: { $0.requiresGrad }), Autograd.isEnabled else { return }
    out.requiresGrad = true
    out.node = GradNode(inputs: inputs, backward: backward)
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = values.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}
