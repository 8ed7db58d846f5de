import Foundation

/// Where one parameter sits in a ``ParameterArena``.
public struct ParameterEntry: Sendable, Equatable {
    /// The parameter's key (the Hugging Face checkpoint name).
    public let name: String
    /// The parameter's shape.
    public let shape: [Int]
    /// Index of its first element in the arena's `values` (and `grads`).
    public let offset: Int
    /// Number of elements.
    public let count: Int
    /// Whether optimizers skip it and ops record no gradient for it.
    public internal(set) var frozen: Bool

    /// The elements it occupies in the arena's buffers.
    public var range: Range<Int> { offset..<(offset + count) }
}

/// All parameters of a model in one contiguous buffer, their gradients in another with the same
/// layout.
///
/// The optimizer is then one loop over a few ranges, zeroing the gradients one memset, clipping one
/// pass and a checkpoint one write. Each parameter is a ``Tensor`` view into `values` whose gradient
/// is pinned to the same offset in `grads`, so backward accumulates straight into the arena.
///
/// ```swift
/// let arena = ParameterArena()
/// let w = arena.add(name: "lm_head.weight", shape: [512, 64])
/// arena.freeze { $0.name.hasPrefix("transformer.") }
/// // forward, loss.backward() ...
/// let norm = arena.clipGradNorm(maxNorm: 1)
/// ```
///
/// Every parameter starts 16-float (64-byte) aligned; the gaps between parameters are padding
/// whose values and gradients stay zero. Adding grows the buffers geometrically, which may move
/// `values.base` and `grads.base`: views stay valid because they read the base at op time, but a raw
/// `data` pointer taken before an `add` must not be used after it. Not thread-safe for mutation.
public final class ParameterArena: @unchecked Sendable {
    /// The parameter values, in entry order.
    public let values: TensorStorage
    /// The gradients, in the same layout as `values`.
    public let grads: TensorStorage
    /// The parameters in the order they were added.
    public private(set) var entries: [ParameterEntry] = []
    /// The parameter views, parallel to `entries`.
    public private(set) var tensors: [Tensor] = []
    /// Floats the layout spans: the end of the last parameter. Elements past it are unused.
    public private(set) var usedCount = 0
    private var indexByName: [String: Int] = [:]

    /// Alignment of each parameter's first element, in floats (64 bytes).
    public static let alignment = 16

    /// An empty arena; `capacity` floats are reserved up front (a hint that saves regrowth).
    public init(capacity: Int = 0) {
        values = TensorStorage(zeroedCount: max(capacity, 0))
        grads = TensorStorage(zeroedCount: max(capacity, 0))
    }

    // MARK: Adding

    /// Adds a zero-initialized parameter and returns its view (requiring a gradient, with its
    /// gradient pinned into `grads`). Names must be unique.
    @discardableResult
    public func add(name: String, shape: [Int]) -> Tensor {
        precondition(indexByName[name] == nil, "parameter \(name) added twice")
        let count = Tensor.elementCount(shape)
        let a = Self.alignment
        let offset = (usedCount + a - 1) / a * a
        let end = offset + count
        // Capacity rounded up to the alignment so the padding after the last parameter is ours too.
        let needed = (end + a - 1) / a * a
        values.grow(toAtLeast: needed)
        grads.grow(toAtLeast: needed)
        usedCount = end

        let view = Tensor(shape: shape, storage: values, offset: offset, requiresGrad: true)
        view.name = name
        view.pinGrad(Tensor(shape: shape, storage: grads, offset: offset))
        indexByName[name] = entries.count
        entries.append(ParameterEntry(name: name, shape: shape, offset: offset, count: count,
                                      frozen: false))
        tensors.append(view)
        return view
    }

    /// Adds a parameter holding a copy of `initial`'s elements and returns its view.
    @discardableResult
    public func add(name: String, values initial: Tensor) -> Tensor {
        let view = add(name: name, shape: initial.shape)
        view.data.update(from: initial.data, count: initial.count)
        return view
    }

    // MARK: Lookup

    /// The view of the parameter called `name`, if any.
    public func tensor(named name: String) -> Tensor? {
        indexByName[name].map { tensors[$0] }
    }

    /// The entry of the parameter called `name`, if any.
    public func entry(named name: String) -> ParameterEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// Elements over all parameters (padding excluded).
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }

    /// Elements over the parameters that are not frozen.
    public var trainableCount: Int { entries.reduce(0) { $0 + ($1.frozen ? 0 : $1.count) } }

    // MARK: Freezing

    /// Freezes the parameters matching `predicate`: they stop requiring gradients (ops record
    /// nothing for them) and optimizers skip them. Others keep their state.
    public func freeze(where predicate: (ParameterEntry) -> Bool) {
        setFrozen(true, where: predicate)
    }

    /// Unfreezes the parameters matching `predicate`. Others keep their state.
    public func unfreeze(where predicate: (ParameterEntry) -> Bool) {
        setFrozen(false, where: predicate)
    }

    /// Freezes every parameter (a reference model).
    public func freezeAll() { setFrozen(true) { _ in true } }

    /// Unfreezes every parameter.
    public func unfreezeAll() { setFrozen(false) { _ in true } }

    private func setFrozen(_ frozen: Bool, where predicate: (ParameterEntry) -> Bool) {
        for i in entries.indices where predicate(entries[i]) {
            entries[i].frozen = frozen
            tensors[i].requiresGrad = !frozen
        }
    }

    /// Element ranges of the unfrozen parameters, consecutive unfrozen parameters merged into one
    /// range (spanning the alignment padding between them, whose gradients are always zero).
    public var trainableRanges: [Range<Int>] {
        var ranges: [Range<Int>] = []
        var previousTrainable = false
        for e in entries {
            defer { previousTrainable = !e.frozen }
            guard !e.frozen, e.count > 0 else { continue }
            if previousTrainable, let last = ranges.last {
                ranges[ranges.count - 1] = last.lowerBound..<e.range.upperBound
            } else {
                ranges.append(e.range)
            }
        }
        return ranges
    }

    // MARK: Gradients

    /// Sets every gradient to zero (one memset, frozen parameters included).
    public func zeroGrad() {
        grads.base.update(repeating: 0, count: usedCount)
    }

    /// The global L2 norm of the trainable parameters' gradients.
    ///
    /// Blocks of 4096 floats are summed with a vectorized Float reduction and the block sums in
    /// Double, so the result stays accurate for billions of elements.
    public func gradNorm() -> Float {
        let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: Threads.count)
        defer { partials.deallocate() }
        partials.initialize(repeating: 0)
        let g = grads.base
        parallelForEachSlice(of: trainableRanges) { chunk, _, slice in
            var total: Double = 0
            var i = slice.lowerBound
            while i < slice.upperBound {
                let end = min(i &+ 4096, slice.upperBound)
                total += Double(relaxedDot(g + i, g + i, end &- i))
                i = end
            }
            partials[chunk] += total
        }
        return Float(partials.reduce(0, +).squareRoot())
    }

    /// Scales the trainable gradients so that their global norm is at most `maxNorm`, with
    /// `torch.nn.utils.clip_grad_norm_` semantics: the factor `maxNorm / (norm + 1e-6)` is applied
    /// only when it is below 1. Returns the norm before clipping; when it is not finite the
    /// gradients are left as they are (the caller should skip the step).
    @discardableResult
    public func clipGradNorm(maxNorm: Float) -> Float {
        let norm = gradNorm()
        let scale = maxNorm / (norm + 1e-6)
        guard scale < 1 else { return norm }
        let g = grads.base
        parallelForEachSlice(of: trainableRanges) { _, _, slice in
            var i = slice.lowerBound
            while i < slice.upperBound { g[i] *= scale; i &+= 1 }
        }
        return norm
    }

    /// Multiplies the trainable gradients by `factor` (frozen gradients stay as they are).
    /// Gradient accumulation uses it to turn a sum of item-weighted micro-batch gradients into
    /// the gradient of the mean over every item.
    public func scaleGrads(by factor: Float) {
        let g = grads.base
        parallelForEachSlice(of: trainableRanges) { _, _, slice in
            var i = slice.lowerBound
            while i < slice.upperBound { g[i] *= factor; i &+= 1 }
        }
    }

    // MARK: Copies

    /// Whether `other` has the same parameters (names, shapes, offsets) in the same order.
    public func hasSameLayout(as other: ParameterArena) -> Bool {
        entries.count == other.entries.count && zip(entries, other.entries).allSatisfy {
            $0.name == $1.name && $0.shape == $1.shape && $0.offset == $1.offset
        }
    }

    /// Copies every value from `other`, which must have the same layout (for a frozen reference
    /// copy of a policy, or to reset a model).
    public func copyValues(from other: ParameterArena) {
        precondition(hasSameLayout(as: other), "copyValues between arenas of different layouts")
        values.base.update(from: other.values.base, count: usedCount)
    }

    /// The values in layout order (`usedCount` floats, padding included).
    public func snapshotValues() -> [Float] {
        Array(UnsafeBufferPointer(start: values.base, count: usedCount))
    }

    /// Puts back values taken by ``snapshotValues()``.
    public func restoreValues(_ snapshot: [Float]) {
        precondition(snapshot.count == usedCount,
                     "snapshot of \(snapshot.count) floats for an arena of \(usedCount)")
        snapshot.withUnsafeBufferPointer { src in
            if let src = src.baseAddress { values.base.update(from: src, count: usedCount) }
        }
    }
}

/// Runs `body` over the union of `ranges`, cut into contiguous pieces spread over the kernel
/// threads (single-threaded below `2 * grain` elements in total).
///
/// `body(chunk, rangeIndex, slice)` receives a piece `slice` of `ranges[rangeIndex]`; one chunk may
/// call it for several ranges, pieces of different chunks never overlap, and `chunk` is in
/// `0..<Threads.count` so per-chunk accumulators can be sized with it. This is how code outside
/// TensorCore (optimizers) runs one parallel loop over an arena's trainable ranges.
public func parallelForEachSlice(of ranges: [Range<Int>], grain: Int = 1 << 16,
                                 _ body: (_ chunk: Int, _ rangeIndex: Int, _ slice: Range<Int>) -> Void) {
    // starts[i]: position of ranges[i] in the concatenation of all ranges.
    var starts = [Int](repeating: 0, count: ranges.count + 1)
    for (i, r) in ranges.enumerated() { starts[i + 1] = starts[i] + r.count }
    let total = starts[ranges.count]
    starts.withUnsafeBufferPointer { starts in
        parallelFor(total, grain: grain) { chunk, lo, hi in
            // The last range starting at or before lo (skipping empty ranges).
            var a = 0, b = ranges.count - 1
            while a < b {
                let mid = (a + b + 1) / 2
                if starts[mid] <= lo { a = mid } else { b = mid - 1 }
            }
            var i = a
            while i < ranges.count && starts[i] < hi {
                let from = max(lo, starts[i]), to = min(hi, starts[i + 1])
                if from < to {
                    let base = ranges[i].lowerBound - starts[i]
                    body(chunk, i, (base + from)..<(base + to))
                }
                i += 1
            }
        }
    }
}
