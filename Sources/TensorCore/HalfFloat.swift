/// Exact conversions from the 16-bit float formats of checkpoint files (IEEE 754 half precision,
/// bfloat16) to Float32, in bit arithmetic so they run the same on every CPU and vectorize.
public enum HalfFloat {
    /// The Float32 value of IEEE half-precision `bits`; exact for every input, including subnormals,
    /// signed zeros, infinities and NaN (whose payload is kept).
    @inlinable @inline(__always)
    public static func float(fromF16 bits: UInt16) -> Float {
        let h = UInt32(bits)
        let sign = (h & 0x8000) << 16
        let magnitude = h & 0x7FFF
        let exponent = magnitude & 0x7C00
        // A normal number moves its exponent from bias 15 to bias 127 (add 112 << 23).
        let normal = (magnitude << 13) &+ 0x3800_0000
        // Infinity and NaN keep an all-ones exponent and the mantissa bits.
        let special = (magnitude << 13) | 0x7F80_0000
        // Zero and subnormals are mantissa * 2^-24, which Float32 holds exactly.
        let subnormal = (Float(Int32(bitPattern: magnitude)) * 0x1p-24).bitPattern
        // Selects rather than branches, so loops over this vectorize.
        let out = exponent == 0x7C00 ? special : (exponent == 0 ? subnormal : normal)
        return Float(bitPattern: out | sign)
    }

    /// The Float32 value of bfloat16 `bits` (the upper half of a Float32); exact for every input.
    @inlinable @inline(__always)
    public static func float(fromBF16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Converts `count` little-endian half-precision values at `source` (any alignment) to Float32.
    public static func convertF16(_ source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>,
                                  count: Int) {
        var i = 0
        while i < count {
            let bits = source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)
            destination[i] = float(fromF16: UInt16(littleEndian: bits))
            i &+= 1
        }
    }

    /// Converts `count` little-endian bfloat16 values at `source` (any alignment) to Float32.
    public static func convertBF16(_ source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>,
                                   count: Int) {
        var i = 0
        while i < count {
            let bits = source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)
            destination[i] = float(fromBF16: UInt16(littleEndian: bits))
            i &+= 1
        }
    }
}
