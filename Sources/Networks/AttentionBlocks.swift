// diffusers models/attention_processor.py `Attention` in the three forms Kandinsky 2.2 uses:
// - added-KV attention (AttnAddedKVProcessor2_0): UNet SimpleCrossAttn blocks; the image tokens come first in k/v.
// - spatial self-attention with group or spatial norm (AttnProcessor2_0 on 4-D input): MoVQ.
// - token self-attention with an additive mask (AttnProcessor2_0 on 3-D input): PriorTransformer.
import Checkpoint
import TensorCore

/// to_q / to_k / to_v / to_out.0 plus the optional add_k_proj / add_v_proj.
struct AttentionProjections {
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let addK: Linear?, addV: Linear?
    let heads: Int, headDim: Int

    init(_ w: WeightScope, queryDim: Int, heads: Int, headDim: Int, addedKVDim: Int? = nil, bias: Bool = true) throws {
        let inner = heads * headDim
        toQ = try Linear(w.scope("to_q"), in: queryDim, out: inner, bias: bias)
        toK = try Linear(w.scope("to_k"), in: queryDim, out: inner, bias: bias)
        toV = try Linear(w.scope("to_v"), in: queryDim, out: inner, bias: bias)
        toOut = try Linear(w.scope("to_out.0"), in: inner, out: queryDim)
        if let d = addedKVDim {
            addK = try Linear(w.scope("add_k_proj"), in: d, out: inner)
            addV = try Linear(w.scope("add_v_proj"), in: d, out: inner)
        } else {
            addK = nil; addV = nil
        }
        self.heads = heads
        self.headDim = headDim
    }

    /// tokens [B, N, C] -> attention output [B, N, C] (before any residual).
    func callAsFunction(_ tokens: Tensor, context: Tensor? = nil, mask: Tensor? = nil) -> Tensor {
        let q = toQ(tokens)
        var k = toK(tokens), v = toV(tokens)
        if let addK, let addV, let context {
            k = concat([addK(context), k], axis: 1)
            v = concat([addV(context), v], axis: 1)
        }
        let o = attention(q: q, k: k, v: v, heads: heads, scale: 1 / Float(headDim).squareRoot(), mask: mask,
                          precision: toQ.weight.precision)
        return toOut(o)
    }
}

/// SpatialNorm (MoVQ): GroupNorm(f) * conv_y(zq) + conv_b(zq), with zq resized (nearest) to f, optionally followed by
/// SiLU. conv_y and conv_b are 1x1, so on the upsampled zq each pixel's value is their value at its source pixel of
/// zq: they run at zq's own size (64x64 for a 512x512 picture instead of 512x512) and the group norm reads them
/// through the nearest index, in the pass that writes its result.
struct SpatialNorm {
    let norm: GroupNorm
    let convY: Conv2d, convB: Conv2d

    init(_ w: WeightScope, channels: Int, zqChannels: Int) throws {
        norm = try GroupNorm(w.scope("norm_layer"), groups: 32, channels: channels, eps: 1e-6)
        convY = try Conv2d(w.scope("conv_y"), in: zqChannels, out: channels, kernel: 1)
        convB = try Conv2d(w.scope("conv_b"), in: zqChannels, out: channels, kernel: 1)
    }

    func callAsFunction(_ f: Tensor, zq: Tensor, silu: Bool = false) -> Tensor {
        let modulation = NearestModulation(scale: convY(zq).inLayout(of: f), shift: convB(zq).inLayout(of: f))
        return norm(f, silu: silu, modulation: modulation)
    }
}

/// Attention over the pixels of a feature map, with its residual: x + attn(norm(x)).
struct SpatialAttention {
    enum Norm { case group(GroupNorm), spatial(SpatialNorm) }
    let norm: Norm
    let proj: AttentionProjections

    /// UNet SimpleCrossAttn form: group norm, added K/V from the image tokens.
    init(addedKV w: WeightScope, channels: Int, headDim: Int, contextDim: Int, groups: Int, eps: Float) throws {
        norm = .group(try GroupNorm(w.scope("group_norm"), groups: groups, channels: channels, eps: eps))
        proj = try AttentionProjections(w, queryDim: channels, heads: channels / headDim, headDim: headDim,
                                        addedKVDim: contextDim)
    }

    /// MoVQ form: one head over all channels, group norm (encoder) or spatial norm (decoder).
    init(vq w: WeightScope, channels: Int, groups: Int, zqChannels: Int?) throws {
        if let z = zqChannels {
            norm = .spatial(try SpatialNorm(w.scope("spatial_norm"), channels: channels, zqChannels: z))
        } else {
            norm = .group(try GroupNorm(w.scope("group_norm"), groups: groups, channels: channels, eps: 1e-6))
        }
        proj = try AttentionProjections(w, queryDim: channels, heads: 1, headDim: channels)
    }

    /// x [B, C, H, W]; context [B, T, D] for the added-KV form; zq for spatial norm.
    func callAsFunction(_ x: Tensor, context: Tensor? = nil, zq: Tensor? = nil) -> Tensor {
        let (b, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
        let normed: Tensor
        switch norm {
        case .group(let g): normed = g(x)
        case .spatial(let s): normed = s(x, zq: zq!)
        }
        let out: Tensor
        if normed.layout == .channelsLast {
            out = proj(normed.pixelTokens(), context: context).pixelMap(height: h, width: w)
        } else {
            let tokens = transposeLastTwo(normed.reshaped([b, c, h * w]))  // [B, HW, C]
            out = transposeLastTwo(proj(tokens, context: context)).reshaped([b, c, h, w])
        }
        addInPlace(out, x)
        return out
    }
}
