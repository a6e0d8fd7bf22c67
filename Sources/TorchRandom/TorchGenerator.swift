// Bit-for-bit PyTorch CPU random numbers: `torch.Generator("cpu").manual_seed(s)` then `torch.randn(shape)` in
// float32. Source of the recipe: aten/src/ATen/core/MT19937RNGEngine.h, aten/src/ATen/native/cpu/DistributionTemplates.h
// (normal_fill_16_AVX2 for 16+ elements; the scalar double Box-Muller with a cached second value below that).
#if canImport(Glibc)
import Glibc
#endif

public final class TorchGenerator {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624
    /// The second value of the last scalar Box-Muller pair; torch keeps it in the generator across calls.
    private var cachedNormal: Double?
    public private(set) var seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        manualSeed(seed)
    }

    public func manualSeed(_ seed: UInt64) {
        self.seed = seed
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1812433253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
        index = 624
        cachedNormal = nil
    }

    public func nextUInt32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    private func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7fff_ffff)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_b0df }
            state[i] = v
        }
        index = 0
    }

    /// uniform_real_distribution<float>(0, 1): 24 random bits.
    private func uniformFloat() -> Float { Float(nextUInt32() & 0xFF_FFFF) * (1.0 / 16_777_216.0) }

    /// uniform_real_distribution<double>(0, 1): 53 random bits of a 64-bit draw.
    private func uniformDouble() -> Double {
        let a = UInt64(nextUInt32()), b = UInt64(nextUInt32())
        return Double(((a << 32) | b) & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// torch.randn(count) as a flat float32 array (reshape freely: the draw order is the memory order).
    public func randn(_ count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { fillNormal($0.baseAddress!, count) }
        return out
    }

    public func fillNormal(_ d: UnsafeMutablePointer<Float>, _ n: Int) {
        if n >= 16 {
            for i in 0..<n { d[i] = uniformFloat() }
            var i = 0
            while i + 16 <= n { boxMuller16(d + i); i += 16 }
            if n % 16 != 0 {
                // torch redraws the whole last window of 16 and transforms it again.
                let tail = d + (n - 16)
                for j in 0..<16 { tail[j] = uniformFloat() }
                boxMuller16(tail)
            }
        } else {
            for i in 0..<n { d[i] = Float(scalarNormal()) }
        }
    }

    /// torch's normal_fill_16 as its AVX2 build runs it (x86-64 CPUs with AVX2): lane j pairs with lane j + 8,
    /// with the cephes-style log and sincos of avx_mathfun.h (see CephesMath.swift), not libm.
    private func boxMuller16(_ d: UnsafeMutablePointer<Float>) {
        let twoPi = Float(2.0 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - d[j], u2 = d[j + 8]
            let radius = (-2 * CephesMath.log(u1)).squareRoot()
            let (s, c) = CephesMath.sincos(twoPi * u2)
            d[j] = radius * c
            d[j + 8] = radius * s
        }
    }

    private func scalarNormal() -> Double {
        if let c = cachedNormal { cachedNormal = nil; return c }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let r = (-2 * log1p(-u2)).squareRoot()
        let theta = 2 * Double.pi * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta)
    }
}
