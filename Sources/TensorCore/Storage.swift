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
        base = BufferPool.shared.take(floats: count, zeroed: false)
    }

    /// A buffer of `count` zeros. A large fresh buffer is zero without being written (its pages are
    /// mapped on first touch), so a gradient buffer that inference never uses costs no memory.
    public init(zeroedCount count: Int) {
        capacity = count
        base = BufferPool.shared.take(floats: count, zeroed: true)
    }

    /// Grows the buffer to hold at least `count` floats, keeping its contents; new floats are zero.
    func grow(toAtLeast count: Int) {
        guard count > capacity else { return }
        let newCapacity = max(count, capacity &* 2, 1024)
        let fresh = BufferPool.shared.take(floats: newCapacity, zeroed: true)
        fresh.update(from: base, count: capacity)
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

    /// Size classes from this many bytes up are mapped from the kernel directly (page-aligned,
    /// zero, faulted in lazily) and unmapped when freed.
    static let mapThreshold = 1 << 20

    private static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= mapThreshold,
           let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
            return p
        }
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    private static func release(_ p: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= mapThreshold { munmap(p, bytes) } else { p.deallocate() }
    }

    /// A buffer of at least `floats` floats; zero-filled when `zeroed` (free for fresh mappings).
    func take(floats: Int, zeroed: Bool) -> UnsafeMutablePointer<Float> {
        let bytes = Self.sizeClass(floats: floats)
        let reused: Int? = state.withLock { s in
            guard var list = s.free[bytes], let p = list.popLast() else { return nil }
            s.free[bytes] = list
            s.cachedBytes &-= bytes
            return p
        }
        let raw: UnsafeMutableRawPointer
        if let reused, let p = UnsafeMutableRawPointer(bitPattern: reused) {
            raw = p
            if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        } else {
            raw = Self.allocate(bytes: bytes)
            if zeroed && bytes < Self.mapThreshold { raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        }
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
        if !kept { Self.release(raw, bytes: bytes) }
    }

    /// Most bytes kept for reuse; buffers returned beyond it are freed.
    public var limitBytes: Int {
        get { state.withLock { $0.limitBytes } }
        set { state.withLock { $0.limitBytes = newValue } }
    }

    /// Frees every cached buffer.
    public func trim() {
        let all = state.withLock { s -> [(Int, Int)] in
            let all = s.free.flatMap { bytes, list in list.map { ($0, bytes) } }
            s.free = [:]
            s.cachedBytes = 0
            return all
        }
        for (p, bytes) in all { if let raw = UnsafeMutableRawPointer(bitPattern: p) { Self.release(raw, bytes: bytes) } }
    }

    /// Bytes currently held for reuse.
    public var cachedBytes: Int { state.withLock { $0.cachedBytes } }
}
