/// GPT-2's reversible byte-to-character mapping: every byte gets a printable Unicode scalar so that
/// vocabulary files can store arbitrary byte strings as JSON text. Printable Latin-1 bytes map to
/// themselves; the 68 others map to U+0100 and up, in byte order.
enum ByteLevel {
    /// Scalar value for each byte.
    static let scalarOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// Byte for each scalar below 0x144, or -1 when the scalar is not in the mapping.
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarOfByte.enumerated() {
            table[Int(scalar)] = Int16(byte)
        }
        return table
    }()

    /// The 256 bytes in the order of their mapped scalars: the order in which Hugging Face's trainer
    /// assigns ids to the initial alphabet.
    static let bytesInScalarOrder: [UInt8] = (0..<256).map { UInt8($0) }
        .sorted { scalarOfByte[Int($0)] < scalarOfByte[Int($1)] }

    private static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// UTF-8 of the mapped text for `bytes` (the form vocabulary files store).
    static func encode<C: Sequence<UInt8>>(_ bytes: C) -> [UInt8] {
        var out = [UInt8]()
        for byte in bytes {
            appendUTF8(scalarOfByte[Int(byte)], to: &out)
        }
        return out
    }

    /// The bytes that mapped text stands for, or nil when a scalar is outside the mapping.
    static func decode(_ utf8: [UInt8]) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let (scalar, length) = UTF8Scalars.decode(utf8, at: i)
            guard scalar < 0x144, byteOfScalar[Int(scalar)] >= 0 else { return nil }
            out.append(UInt8(byteOfScalar[Int(scalar)]))
            i += length
        }
        return out
    }
}

/// Small UTF-8 helpers over byte arrays; invalid input never traps.
enum UTF8Scalars {
    /// Decodes the scalar at `i`. An invalid or truncated sequence yields U+FFFD and length 1.
    @inline(__always)
    static func decode(_ p: UnsafePointer<UInt8>, at i: Int, end: Int) -> (scalar: UInt32, length: Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 >= 0xC2 && b0 < 0xE0 && i &+ 1 < end {
            let b1 = UInt32(p[i &+ 1])
            if b1 & 0xC0 == 0x80 { return ((b0 & 0x1F) << 6 | (b1 & 0x3F), 2) }
        } else if b0 >= 0xE0 && b0 < 0xF0 && i &+ 2 < end {
            let b1 = UInt32(p[i &+ 1]), b2 = UInt32(p[i &+ 2])
            if b1 & 0xC0 == 0x80 && b2 & 0xC0 == 0x80 {
                let v = (b0 & 0x0F) << 12 | (b1 & 0x3F) << 6 | (b2 & 0x3F)
                if v >= 0x800 && (v < 0xD800 || v > 0xDFFF) { return (v, 3) }
            }
        } else if b0 >= 0xF0 && b0 < 0xF5 && i &+ 3 < end {
            let b1 = UInt32(p[i &+ 1]), b2 = UInt32(p[i &+ 2]), b3 = UInt32(p[i &+ 3])
            if b1 & 0xC0 == 0x80 && b2 & 0xC0 == 0x80 && b3 & 0xC0 == 0x80 {
                let v = (b0 & 0x07) << 18 | (b1 & 0x3F) << 12 | (b2 & 0x3F) << 6 | (b3 & 0x3F)
                if v >= 0x10000 && v <= 0x10FFFF { return (v, 4) }
            }
        }
        return (0xFFFD, 1)
    }

    static func decode(_ bytes: [UInt8], at i: Int) -> (scalar: UInt32, length: Int) {
        bytes.withUnsafeBufferPointer { decode($0.baseAddress!, at: i, end: $0.count) }
    }

    /// Byte offset of the first invalid UTF-8 sequence, or nil when `bytes` is valid.
    static func firstInvalidOffset(_ p: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = p.baseAddress else { return nil }
        var i = 0
        while i < p.count {
            if base[i] < 0x80 { i &+= 1; continue }
            let (scalar, length) = decode(base, at: i, end: p.count)
            if scalar == 0xFFFD && length == 1 { return i }
            i &+= length
        }
        return nil
    }
}

@inline(__always)
func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | scalar >> 6))
        out.append(UInt8(0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | scalar >> 12))
        out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    default:
        out.append(UInt8(0xF0 | scalar >> 18))
        out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
        out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    }
}
