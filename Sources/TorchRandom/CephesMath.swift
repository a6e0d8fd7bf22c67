// Single-precision log and sincos in the cephes formulation that PyTorch's AVX2 random normal kernel uses
// (aten/src/ATen/native/cpu/avx_mathfun.h, after Pommier's sse_mathfun). Results differ from libm by an ulp or
// so; reproducing the same operations in the same order gives torch's exact bits. torch's binary is built by
// GCC, whose default -ffp-contract=fast fuses each multiply that feeds an add into one FMA; we write those FMAs
// explicitly (`addingProduct`), and plain products where GCC has nothing to fuse.

enum CephesMath {
    // Constants are C double literals narrowed to float, as the C initialisers do.
    private static let sqrtHalf = Float(0.707106781186547524 as Double)
    private static let logP: [Float] = [7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
                                        1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
                                        3.3333331174E-1].map { Float($0 as Double) }
    private static let logQ1 = Float(-2.12194440e-4 as Double), logQ2 = Float(0.693359375 as Double)

    /// log256_ps for one lane; NaN for x <= 0.
    static func log(_ input: Float) -> Float {
        if !(input > 0) { return .nan }
        var x = max(input, Float(bitPattern: 0x0080_0000))
        let exponent = Int32(bitPattern: x.bitPattern >> 23) - 0x7f
        x = Float(bitPattern: (x.bitPattern & ~0x7f80_0000) | Float(0.5).bitPattern)
        var e = Float(exponent) + 1
        let below = x < sqrtHalf
        let tmp: Float = below ? x : 0
        x = x - 1
        if below { e = e - 1 }
        x = x + tmp
        let z = x * x
        var y = logP[0]
        for p in logP.dropFirst() { y = p.addingProduct(y, x) }
        y = y * x
        // GCC fuses the first multiply of `y*z + e*q1` in statement order: fma(y, z, e*q1).
        y = (e * logQ1).addingProduct(y, z)
        y = y.addingProduct(-z, 0.5)
        x = x + y
        x = x.addingProduct(e, logQ2)
        return x
    }

    private static let dp1 = Float(-0.78515625 as Double), dp2 = Float(-2.4187564849853515625e-4 as Double)
    private static let dp3 = Float(-3.77489497744594108e-8 as Double)
    private static let sinP: [Float] = [-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1].map { Float($0 as Double) }
    private static let cosP: [Float] = [2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002].map { Float($0 as Double) }
    private static let fourOverPi = Float(1.27323954473516 as Double)

    /// sincos256_ps for one lane: (sin x, cos x).
    static func sincos(_ input: Float) -> (Float, Float) {
        let signSin0 = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7fff_ffff)
        var j = Int32(x * fourOverPi)          // truncation, as cvttps
        j = (j &+ 1) & ~1
        let y = Float(j)
        let swapSin = UInt32(bitPattern: (j & 4) << 29)
        let polyMask = (j & 2) == 0
        x = x.addingProduct(y, dp1)
        x = x.addingProduct(y, dp2)
        x = x.addingProduct(y, dp3)
        let signCos = UInt32(bitPattern: (~(j &- 2) & 4) << 29)
        let signSin = signSin0 ^ swapSin

        let z = x * x
        var c = cosP[0]
        c = cosP[1].addingProduct(c, z)
        c = cosP[2].addingProduct(c, z)
        c = c * z
        c = (-(z * 0.5)).addingProduct(c, z)
        c = c + 1
        var s = sinP[0]
        s = sinP[1].addingProduct(s, z)
        s = sinP[2].addingProduct(s, z)
        s = s * z
        s = x.addingProduct(s, x)
        let sinValue: Float = polyMask ? s : c
        let cosValue: Float = polyMask ? c : s
        return (Float(bitPattern: sinValue.bitPattern ^ signSin), Float(bitPattern: cosValue.bitPattern ^ signCos))
    }
}
