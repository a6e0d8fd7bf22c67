// diffusers models/autoencoders/vq_model.py + vae.py (Encoder, Decoder) in MoVQ's form: `norm_type: spatial`
// (the decoder's norms are modulated by the latents, SpatialNorm), DownEncoderBlock2D/AttnDownEncoderBlock2D,
// UpDecoderBlock2D/AttnUpDecoderBlock2D, and the VectorQuantizer codebook.
import Checkpoint
import Foundation
import TensorCore

public struct VQConfig {
    public var inChannels = 3, outChannels = 3, latentChannels = 3
    public var blockOutChannels = [64]
    public var downBlockTypes = ["DownEncoderBlock2D"], upBlockTypes = ["UpDecoderBlock2D"]
    public var layersPerBlock = 1
    public var normNumGroups = 32
    public var numVQEmbeddings = 256
    public var vqEmbedDim: Int?
    public var spatialNorm = false
    public var midBlockAddAttention = true

    public init() {}

    public init(_ c: ConfigReader) throws {
        inChannels = try c.int("in_channels", default: 3, in: ConfigRange.size)
        outChannels = try c.int("out_channels", default: 3, in: ConfigRange.size)
        latentChannels = try c.int("latent_channels", default: 3, in: ConfigRange.size)
        blockOutChannels = try c.ints("block_out_channels", default: [64], in: ConfigRange.size)
        downBlockTypes = try c.strings("down_block_types", default: ["DownEncoderBlock2D"])
        upBlockTypes = try c.strings("up_block_types", default: ["UpDecoderBlock2D"])
        guard downBlockTypes.count == blockOutChannels.count, upBlockTypes.count == blockOutChannels.count else {
            let reason = "down_block_types, up_block_types and block_out_channels differ in length"
            throw CheckpointError.badConfig(path: c.path, reason: reason)
        }
        for t in downBlockTypes where !["DownEncoderBlock2D", "AttnDownEncoderBlock2D"].contains(t) {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "down_block_types", value: t)
        }
        for t in upBlockTypes where !["UpDecoderBlock2D", "AttnUpDecoderBlock2D"].contains(t) {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "up_block_types", value: t)
        }
        layersPerBlock = try c.int("layers_per_block", default: 1, in: ConfigRange.count)
        normNumGroups = try c.int("norm_num_groups", default: 32, in: ConfigRange.count)
        numVQEmbeddings = try c.int("num_vq_embeddings", default: 256, in: ConfigRange.size)
        vqEmbedDim = try c.values["vq_embed_dim"] is NSNull
            ? nil : (c.values["vq_embed_dim"] == nil ? nil : c.int("vq_embed_dim"))
        c.ignore(["vq_embed_dim"])
        let norm = try c.string("norm_type", default: "group")!
        guard norm == "group" || norm == "spatial" else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "norm_type", value: norm)
        }
        spatialNorm = norm == "spatial"
        midBlockAddAttention = try c.bool("mid_block_add_attention", default: true)
        try c.require("act_fn", in: ["silu"])
        try c.require("lookup_from_codebook", in: [false])
        // scaling_factor is never applied by the Kandinsky 2.2 pipelines; force_upcast concerns fp16 execution.
        c.ignore(["scaling_factor", "sample_size", "force_upcast"])
        try c.finish()
    }

    public var embedDim: Int { vqEmbedDim ?? latentChannels }
    /// Pixel size of one latent: 2^(levels - 1).
    public var scaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}

/// UNetMidBlock2D as the VAE uses it: resnet, (attention, resnet).
struct VQMidBlock {
    let resnets: [ResnetBlock2D]
    let attention: SpatialAttention?

    init(_ w: WeightScope, channels: Int, groups: Int, zqChannels: Int?, addAttention: Bool) throws {
        resnets = try (0..<2).map { i in
            try ResnetBlock2D(w.scope("resnets", i), in: channels, out: channels, tembChannels: nil, groups: groups,
                              eps: 1e-6, zqChannels: zqChannels)
        }
        attention = addAttention
            ? try SpatialAttention(vq: w.scope("attentions", 0), channels: channels, groups: groups,
                                   zqChannels: zqChannels)
            : nil
    }

    func callAsFunction(_ x: Tensor, zq: Tensor?) -> Tensor {
        var h = resnets[0](x, zq: zq)
        if let a = attention { h = a(h, zq: zq) }
        return resnets[1](h, zq: zq)
    }
}

/// A VAE encoder or decoder block: resnets, optional attentions after each, optional resampler.
struct VQBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [SpatialAttention]
    /// Encoder: F.pad (0,1,0,1) + 3x3 stride-2 conv. Decoder: nearest x2 + 3x3 conv.
    let resampleConv: Conv2d?
    let upsample: Bool

    init(_ w: WeightScope, in inC: Int, out outC: Int, layers: Int, attention: Bool, groups: Int, zqChannels: Int?,
         downsample: Bool, upsample: Bool) throws {
        resnets = try (0..<layers).map { i in
            try ResnetBlock2D(w.scope("resnets", i), in: i == 0 ? inC : outC, out: outC, tembChannels: nil,
                              groups: groups, eps: 1e-6, zqChannels: zqChannels)
        }
        attentions = attention
            ? try (0..<layers).map {
                try SpatialAttention(vq: w.scope("attentions", $0), channels: outC, groups: groups,
                                     zqChannels: zqChannels)
            }
            : []
        if downsample {
            resampleConv = try Conv2d(w.scope("downsamplers.0.conv"), in: outC, out: outC, kernel: 3, stride: 2,
                                      padding: .bottomRight)
        } else if upsample {
            resampleConv = try Conv2d(w.scope("upsamplers.0.conv"), in: outC, out: outC, kernel: 3)
        } else {
            resampleConv = nil
        }
        self.upsample = upsample
    }

    func callAsFunction(_ x: Tensor, zq: Tensor?) -> Tensor {
        var h = x
        for (i, r) in resnets.enumerated() {
            h = r(h, zq: zq)
            if !attentions.isEmpty { h = attentions[i](h, zq: zq) }
        }
        if let conv = resampleConv { h = upsample ? conv.ofUpsampled2x(h) : conv(h) }
        return h
    }
}

public final class VQModel {
    public let config: VQConfig
    // encoder
    let encConvIn: Conv2d
    let encBlocks: [VQBlock]
    let encMid: VQMidBlock
    let encNormOut: GroupNorm
    let encConvOut: Conv2d
    let quantConv: Conv2d
    /// quantize.embedding.weight [num_vq_embeddings, embed_dim]
    public let codebook: Tensor
    let postQuantConv: Conv2d
    // decoder
    let decConvIn: Conv2d
    let decMid: VQMidBlock
    let decBlocks: [VQBlock]
    let decNormOut: SpatialNorm?
    let decGroupNormOut: GroupNorm?
    let decConvOut: Conv2d

    public init(config: VQConfig, weights store: WeightStore) throws {
        self.config = config
        let w = store.scope("")
        let boc = config.blockOutChannels, g = config.normNumGroups
        let e = w.scope("encoder")
        encConvIn = try Conv2d(e.scope("conv_in"), in: config.inChannels, out: boc[0], kernel: 3)
        var blocks: [VQBlock] = []
        var out = boc[0]
        for (i, type) in config.downBlockTypes.enumerated() {
            let inC = out
            out = boc[i]
            blocks.append(try VQBlock(e.scope("down_blocks", i), in: inC, out: out, layers: config.layersPerBlock,
                                      attention: type == "AttnDownEncoderBlock2D", groups: g, zqChannels: nil,
                                      downsample: i < boc.count - 1, upsample: false))
        }
        encBlocks = blocks
        encMid = try VQMidBlock(e.scope("mid_block"), channels: boc.last!, groups: g, zqChannels: nil,
                                addAttention: config.midBlockAddAttention)
        encNormOut = try GroupNorm(e.scope("conv_norm_out"), groups: g, channels: boc.last!, eps: 1e-6)
        encConvOut = try Conv2d(e.scope("conv_out"), in: boc.last!, out: config.latentChannels, kernel: 3)
        quantConv = try Conv2d(w.scope("quant_conv"), in: config.latentChannels, out: config.embedDim, kernel: 1)
        codebook = try w.tensor("quantize.embedding.weight", [config.numVQEmbeddings, config.embedDim])
        postQuantConv = try Conv2d(w.scope("post_quant_conv"), in: config.embedDim, out: config.latentChannels,
                                   kernel: 1)

        let d = w.scope("decoder")
        let zq: Int? = config.spatialNorm ? config.embedDim : nil
        decConvIn = try Conv2d(d.scope("conv_in"), in: config.latentChannels, out: boc.last!, kernel: 3)
        decMid = try VQMidBlock(d.scope("mid_block"), channels: boc.last!, groups: g, zqChannels: zq,
                                addAttention: config.midBlockAddAttention)
        let rboc = Array(boc.reversed())
        blocks = []
        out = rboc[0]
        for (i, type) in config.upBlockTypes.enumerated() {
            let prev = out
            out = rboc[i]
            blocks.append(try VQBlock(d.scope("up_blocks", i), in: prev, out: out, layers: config.layersPerBlock + 1,
                                      attention: type == "AttnUpDecoderBlock2D", groups: g, zqChannels: zq,
                                      downsample: false, upsample: i < rboc.count - 1))
        }
        decBlocks = blocks
        if let z = zq {
            decNormOut = try SpatialNorm(d.scope("conv_norm_out"), channels: boc[0], zqChannels: z)
            decGroupNormOut = nil
        } else {
            decNormOut = nil
            decGroupNormOut = try GroupNorm(d.scope("conv_norm_out"), groups: g, channels: boc[0], eps: 1e-6)
        }
        decConvOut = try Conv2d(d.scope("conv_out"), in: boc[0], out: config.outChannels, kernel: 3)
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let cfg = try VQConfig(ConfigReader(path: (folder as NSString).appendingPathComponent("config.json")))
        try self.init(config: cfg, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    /// encode(): image [B, 3, H, W] in [-1, 1] -> unquantised latents [B, embed_dim, H/f, W/f] (after quant_conv).
    public func encode(_ x: Tensor) -> Tensor {
        var h = encConvIn(x)
        for b in encBlocks { h = b(h, zq: nil) }
        h = encMid(h, zq: nil)
        h = encConvOut(encNormOut(h, silu: true))
        return quantConv(h).planar()
    }

    /// decode(h, force_not_quantize=True) unless `quantize`: latents -> image [B, 3, H*f, W*f] (about [-1, 1]).
    public func decode(_ latents: Tensor, quantize: Bool = false) -> Tensor {
        let quant = quantize ? self.quantize(latents) : latents
        let zq: Tensor? = config.spatialNorm ? quant : nil
        var h = decConvIn(postQuantConv(quant))
        h = decMid(h, zq: zq)
        for b in decBlocks { h = b(h, zq: zq) }
        if let n = decNormOut { h = n(h, zq: quant, silu: true) } else { h = decGroupNormOut!(h, silu: true) }
        return decConvOut(h).planar()
    }

    /// VectorQuantizer: each latent vector replaced by its nearest codebook entry (Euclidean).
    public func quantize(_ z: Tensor) -> Tensor {
        let z = z.planar()
        let (b, c, hgt, wid) = (z.dim(0), z.dim(1), z.dim(2), z.dim(3))
        let tokens = transposeLastTwo(z.reshaped([b, c, hgt * wid]))  // [B, HW, C]
        let n = config.numVQEmbeddings
        let cb = codebook.data, pt = tokens.data
        parallelFor(b * hgt * wid, minPerThread: 16) { r in
            for i in r {
                let v = pt + i * c
                var best = 0, bestD = Float.infinity
                for e in 0..<n {
                    var d: Float = 0
                    for k in 0..<c { let t = v[k] - cb[e * c + k]; d += t * t }
                    if d < bestD { bestD = d; best = e }
                }
                for k in 0..<c { v[k] = cb[best * c + k] }
            }
        }
        return transposeLastTwo(tokens).reshaped([b, c, hgt, wid])
    }
}
