// diffusers models/resnet.py: ResnetBlock2D (group norm, optional time embedding as "default" add or
// "scale_shift", optional avg-pool down / nearest up) and ResnetBlockCondNorm2D (SpatialNorm, MoVQ's decoder).
import Checkpoint
import TensorCore

struct ResnetBlock2D {
    enum Norms { case group(GroupNorm, GroupNorm), spatial(SpatialNorm, SpatialNorm) }
    enum Resample { case none, down, up }
    let norms: Norms
    let conv1: Conv2d, conv2: Conv2d
    let timeEmbProj: Linear?
    let scaleShift: Bool
    let convShortcut: Conv2d?
    let resample: Resample

    init(_ w: WeightScope, in inC: Int, out outC: Int, tembChannels: Int?, groups: Int, eps: Float,
         scaleShift: Bool = false, resample: Resample = .none, zqChannels: Int? = nil) throws {
        if let z = zqChannels {
            norms = .spatial(try SpatialNorm(w.scope("norm1"), channels: inC, zqChannels: z),
                             try SpatialNorm(w.scope("norm2"), channels: outC, zqChannels: z))
        } else {
            norms = .group(try GroupNorm(w.scope("norm1"), groups: groups, channels: inC, eps: eps),
                           try GroupNorm(w.scope("norm2"), groups: groups, channels: outC, eps: eps))
        }
        conv1 = try Conv2d(w.scope("conv1"), in: inC, out: outC, kernel: 3)
        conv2 = try Conv2d(w.scope("conv2"), in: outC, out: outC, kernel: 3)
        if let t = tembChannels, zqChannels == nil {
            timeEmbProj = try Linear(w.scope("time_emb_proj"), in: t, out: scaleShift ? 2 * outC : outC)
        } else {
            timeEmbProj = nil
        }
        self.scaleShift = scaleShift
        convShortcut = inC != outC ? try Conv2d(w.scope("conv_shortcut"), in: inC, out: outC, kernel: 1) : nil
        self.resample = resample
    }

    /// x [B, C, H, W]; temb [B, T] already passed through SiLU (the UNet computes SiLU(temb) once per forward).
    func callAsFunction(_ x: Tensor, tembActivated: Tensor? = nil, zq: Tensor? = nil) -> Tensor {
        var h: Tensor
        switch norms {
        case .group(let n1, _): h = n1(x, silu: true)
        case .spatial(let n1, _): h = n1(x, zq: zq!, silu: true)
        }
        var input = x
        switch resample {
        case .none: h = conv1(h)
        case .down: input = avgPool2x2(input); h = conv1(avgPool2x2(h))
        case .up: input = upsampleNearest2x(input); h = conv1.ofUpsampled2x(h)
        }
        switch norms {
        case .group(_, let n2):
            if let proj = timeEmbProj, let temb = tembActivated {
                let modulation = proj(temb)  // [B, C] or [B, 2C]
                if scaleShift {
                    h = n2(h)
                    scaleShiftSiLU(h, modulation)
                } else {
                    addPerChannel(h, modulation)
                    h = n2(h, silu: true)
                }
            } else {
                h = n2(h, silu: true)
            }
        case .spatial(_, let n2):
            h = n2(h, zq: zq!, silu: true)
        }
        h = conv2(h)
        if let sc = convShortcut { input = sc(input) }
        addInPlace(h, input)
        return h
    }
}
