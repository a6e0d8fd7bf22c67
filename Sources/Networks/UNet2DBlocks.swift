// diffusers models/unets/unet_2d_blocks.py: the five block types of the Kandinsky 2.2 UNet.
// Each block holds `resnets`, `attentions` and `downsamplers`/`upsamplers` under the same key names.
import Checkpoint
import TensorCore

/// Per-forward conditioning shared by every block.
struct UNetConditioning {
    /// SiLU(emb): every resnet applies SiLU to the time embedding before its projection.
    let tembActivated: Tensor
    /// Image tokens for added-KV attention, [B, 32, cross_attention_dim].
    let context: Tensor
}

struct BlockSettings {
    let tembChannels: Int
    let groups: Int
    let eps: Float
    let scaleShift: Bool
    let contextDim: Int
}

/// `attentions.0 ..< count` of a SimpleCrossAttn block: added-KV attention over the image tokens.
func addedKVAttentions(_ w: WeightScope, count: Int, channels: Int, headDim: Int, _ s: BlockSettings) throws -> [SpatialAttention] {
    try (0..<count).map { i in
        try SpatialAttention(addedKV: w.scope("attentions", i), channels: channels, headDim: headDim, contextDim: s.contextDim,
                             groups: s.groups, eps: s.eps)
    }
}

/// ResnetDownsampleBlock2D / SimpleCrossAttnDownBlock2D.
struct DownBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [SpatialAttention]
    let downsampler: ResnetBlock2D?

    init(_ w: WeightScope, type: String, in inC: Int, out outC: Int, layers: Int, headDim: Int, addDownsample: Bool, s: BlockSettings) throws {
        resnets = try (0..<layers).map { i in
            try ResnetBlock2D(w.scope("resnets", i), in: i == 0 ? inC : outC, out: outC, tembChannels: s.tembChannels,
                              groups: s.groups, eps: s.eps, scaleShift: s.scaleShift)
        }
        attentions = type == "SimpleCrossAttnDownBlock2D" ? try addedKVAttentions(w, count: layers, channels: outC, headDim: headDim, s) : []
        downsampler = addDownsample
            ? try ResnetBlock2D(w.scope("downsamplers", 0), in: outC, out: outC, tembChannels: s.tembChannels, groups: s.groups,
                                eps: s.eps, scaleShift: s.scaleShift, resample: .down)
            : nil
    }

    /// Returns the block output and the skip tensors it contributes.
    func callAsFunction(_ x: Tensor, _ c: UNetConditioning) -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for (i, resnet) in resnets.enumerated() {
            h = resnet(h, tembActivated: c.tembActivated)
            if !attentions.isEmpty { h = attentions[i](h, context: c.context) }
            skips.append(h)
        }
        if let d = downsampler { h = d(h, tembActivated: c.tembActivated); skips.append(h) }
        return (h, skips)
    }
}

/// UNetMidBlock2DSimpleCrossAttn: resnet, (attention, resnet) x layers.
struct MidBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [SpatialAttention]

    init(_ w: WeightScope, channels: Int, headDim: Int, layers: Int = 1, s: BlockSettings) throws {
        resnets = try (0...layers).map { i in
            try ResnetBlock2D(w.scope("resnets", i), in: channels, out: channels, tembChannels: s.tembChannels,
                              groups: s.groups, eps: s.eps, scaleShift: s.scaleShift)
        }
        attentions = try addedKVAttentions(w, count: layers, channels: channels, headDim: headDim, s)
    }

    func callAsFunction(_ x: Tensor, _ c: UNetConditioning) -> Tensor {
        var h = resnets[0](x, tembActivated: c.tembActivated)
        for (attn, resnet) in zip(attentions, resnets.dropFirst()) {
            h = attn(h, context: c.context)
            h = resnet(h, tembActivated: c.tembActivated)
        }
        return h
    }
}

/// SimpleCrossAttnUpBlock2D / ResnetUpsampleBlock2D.
struct UpBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [SpatialAttention]
    let upsampler: ResnetBlock2D?

    init(_ w: WeightScope, type: String, in inC: Int, prevOut: Int, out outC: Int, layers: Int, headDim: Int,
         addUpsample: Bool, s: BlockSettings) throws {
        resnets = try (0..<layers).map { i in
            let skip = i == layers - 1 ? inC : outC
            let resIn = i == 0 ? prevOut : outC
            return try ResnetBlock2D(w.scope("resnets", i), in: resIn + skip, out: outC, tembChannels: s.tembChannels,
                                     groups: s.groups, eps: s.eps, scaleShift: s.scaleShift)
        }
        attentions = type == "SimpleCrossAttnUpBlock2D" ? try addedKVAttentions(w, count: layers, channels: outC, headDim: headDim, s) : []
        upsampler = addUpsample
            ? try ResnetBlock2D(w.scope("upsamplers", 0), in: outC, out: outC, tembChannels: s.tembChannels, groups: s.groups,
                                eps: s.eps, scaleShift: s.scaleShift, resample: .up)
            : nil
    }

    /// Consumes skip tensors from the end of `skips`.
    func callAsFunction(_ x: Tensor, skips: inout [Tensor], _ c: UNetConditioning) -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            h = concat([h, skips.removeLast()], axis: 1)
            h = resnet(h, tembActivated: c.tembActivated)
            if !attentions.isEmpty { h = attentions[i](h, context: c.context) }
        }
        if let u = upsampler { h = u(h, tembActivated: c.tembActivated) }
        return h
    }
}
