import Foundation
import Synchronization

/// A Float32 buffer, 64-byte aligned, shared by a tensor and its views.
///
/// Buffers come from ``BufferPool`` and go back to it when the storage dies, so a training step
/// that allocates the same activation shapes every time touches fresh pages only on its first step.
public final class TensorStorage: @unchecked Sendable {
    /// First element. Growable storages (the parameter arena) may move it: read it at op time.
    public private(set) var base: UnsafeMutablePointer<Float>
    /// Number of floats the buffer holds.
    public private(set) var capacity: Int

    /// A buffer of `count` floats whose contents are unspecified.
    public init(uninitializedCount count: Int) {
        capacity = count
        base = BufferPool.shared.take(floats: count)
    }

    /// A buffer of `count` zeros.
    public convenience init(zeroedCount count: Int) {
        self.init(uninitializedCount: count)
        base.update(repeating: 0, count: count)
    }

    /// Grows the buffer to hold at least `count` floats, keeping its contents; new floats are zero.
    func grow(toAtLeast count: Int) {
        guard count > capacity else { return }
        let newCapacity = max(count, capacity &* 2, 1024)
        let fresh = BufferPool.shared.take(floats: newCapacity)
        fresh.update(from: base, count: capacity)
        (fresh + capacity).update(repeating: 0, count: newCapacity - capacity)
        BufferPool.shared.give(base, floats: capacity)
        base = fresh
        capacity = newCapacity
    }

    deinit { BufferPool.shared.give(base, floats: capacity) }
}

/// Recycles aligned buffers by size class.
///
/// Large tensors otherwise come from `mmap` on every allocation and pay a page fault per 4 KiB on
/// first touch; for a 4096x3072 matmul output that is half the time of the matmul itself.
public final class BufferPool: Sendable {
    /// The pool every tensor uses.
    public static let shared = BufferPool()

    private struct State {
        var free: [Int: [Int]] = [:]  // size class -> addresses (Int keeps the state Sendable)
        var cachedBytes = 0
        var limitBytes = 4 << 30
    }
    private let state = Mutex(State())

    /// Bytes a request of `floats` floats occupies: 64-byte steps below 4 KiB, then steps of 1/8 of
    /// the power of two, so at most 12.5% is wasted and similar shapes share a class.
    static func sizeClass(floats: Int) -> Int {
        let bytes = max(floats, 1) &* 4
        if bytes <= 4096 { return (bytes &+ 63) & ~63 }
        let high = Int.bitWidth &- 1 &- bytes.leadingZeroBitCount
        let step = 1 << (high &- 3)
        return (bytes &+ step &- 1) & ~(step &- 1)
    }

    func take(floats: Int) -> UnsafeMutablePointer<Float> {
        let bytes = Self.sizeClass(floats: floats)
        let reused: Int? = state.withLock { s in
            guard var list = s.free[bytes], let p = list.popLast() else { return nil }
            s.free[bytes] = list
            s.cachedBytes &-= bytes
            return p
        }
        let raw = reused.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
            ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: bytes / 4)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, floats: Int) {
        let bytes = Self.sizeClass(floats: floats)
        let raw = UnsafeMutableRawPointer(pointer)
        let address = Int(bitPattern: raw)
        let kept = state.withLock { s -> Bool in
            guard s.cachedBytes &+ bytes <= s.limitBytes else { return false }
            s.free[bytes, default: []].append(address)
            s.cachedBytes &+= bytes
            return true
        }
        if !kept { raw.deallocate() }
    }

    /// Most bytes kept for reuse; buffers returned beyond it are freed.
    public var limitBytes: Int {
        get { state.withLock { $0.limitBytes } }
        set { state.withLock { $0.limitBytes = newValue } }
    }

    /// Frees every cached buffer.
    public func trim() {
        let all = state.withLock { s -> [Int] in
            let all = s.free.values.flatMap { $0 }
            s.free = [:]
            s.cachedBytes = 0
            return all
        }
        for p in all { UnsafeMutableRawPointer(bitPattern: p)?.deallocate() }
    }

    /// Bytes currently held for reuse.
    public var cachedBytes: Int { state.withLock { $0.cachedBytes } }
}
