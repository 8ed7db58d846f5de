import Testing
import TensorCore

#if !(os(macOS) && arch(x86_64))  // Float16 is unavailable on Intel Macs
@Test func f16ConversionMatchesFloat16ForEveryBitPattern() {
    let bits = [UInt16](0...UInt16.max)
    var converted = [Float](repeating: 0, count: bits.count)
    bits.withUnsafeBytes { source in
        HalfFloat.convertF16(source.baseAddress!, to: &converted, count: source.count / 2)
    }
    for (i, b) in bits.enumerated() {
        let reference = Float(Float16(bitPattern: b))
        if reference.isNaN {
            #expect(converted[i].isNaN && converted[i].sign == reference.sign, "\(b)")
        } else {
            #expect(converted[i].bitPattern == reference.bitPattern, "\(b)")
        }
        #expect(HalfFloat.float(fromF16: b).bitPattern == converted[i].bitPattern)
    }
}
#endif

@Test func bf16ConversionIsTheUpperHalfOfFloat32() {
    let samples: [Float] = [0, -0.0, 1, -2.5, .infinity, -.infinity, .leastNonzeroMagnitude, 3.0e38]
    for x in samples {
        let upper = UInt16(x.bitPattern >> 16)
        #expect(HalfFloat.float(fromBF16: upper).bitPattern == x.bitPattern & 0xFFFF_0000)
    }
    var source: [UInt16] = [0x3F80, 0x7FC0]
    var out = [Float](repeating: 0, count: 2)
    source.withUnsafeMutableBytes { HalfFloat.convertBF16($0.baseAddress!, to: &out, count: 2) }
    #expect(out[0] == 1 && out[1].isNaN)
}
