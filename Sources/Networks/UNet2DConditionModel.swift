// diffusers models/unets/unet_2d_condition.py, in the Kandinsky 2.2 form: image-embedding conditioning
// (`encoder_hid_dim_type: image_proj`, `addition_embed_type: image | image_hint`), SimpleCrossAttn blocks with
// added K/V, scale-shift resnets. Any in_channels (4 text2img, 9 inpaint, 8 with a depth hint).
import Checkpoint
import Foundation
import TensorCore

public struct UNetConfig {
    public var inChannels = 4
    public var outChannels = 4
    public var blockOutChannels = [320, 640, 1280, 1280]
    public var downBlockTypes: [String] = []
    public var upBlockTypes: [String] = []
    public var layersPerBlock = 2
    public var attentionHeadDim: [Int] = []
    public var crossAttentionDim = 1280
    public var encoderHidDim = 1280
    public var additionEmbedType = "image"
    public var normNumGroups = 32
    public var normEps: Float = 1e-5
    public var scaleShift = true
    public var flipSinToCos = true
    public var freqShift = 0
    public var actFn = Activation.silu
    public var convInKernel = 3
    public var convOutKernel = 3

    public static let downTypes: Set<String> = ["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"]
    public static let upTypes: Set<String> = ["ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"]

    public init() {}

    /// Decodes unet/config.json; every setting outside the Kandinsky 2.2 family is an error naming it.
    public init(_ c: ConfigReader) throws {
        inChannels = try c.int("in_channels", default: 4, in: ConfigRange.size)
        outChannels = try c.int("out_channels", default: 4, in: ConfigRange.size)
        blockOutChannels = try c.ints("block_out_channels", in: ConfigRange.size)
        downBlockTypes = try c.strings("down_block_types")
        upBlockTypes = try c.strings("up_block_types")
        let n = blockOutChannels.count
        guard downBlockTypes.count == n, upBlockTypes.count == n else {
            throw CheckpointError.badConfig(path: c.path, reason: "down_block_types, up_block_types and block_out_channels differ in length")
        }
        for t in downBlockTypes where !Self.downTypes.contains(t) { throw CheckpointError.unsupportedConfig(path: c.path, key: "down_block_types", value: t) }
        for t in upBlockTypes where !Self.upTypes.contains(t) { throw CheckpointError.unsupportedConfig(path: c.path, key: "up_block_types", value: t) }
        try c.require("mid_block_type", in: ["UNetMidBlock2DSimpleCrossAttn"])
        let lpb = try c.intPerBlock("layers_per_block", count: n, default: 2, in: ConfigRange.count)!
        guard Set(lpb).count == 1 else { throw CheckpointError.unsupportedConfig(path: c.path, key: "layers_per_block", value: "\(lpb)") }
        layersPerBlock = lpb[0]
        attentionHeadDim = try c.intPerBlock("attention_head_dim", count: n, default: 8, in: ConfigRange.size)!
        try c.require("num_attention_heads", in: [])
        crossAttentionDim = try c.int("cross_attention_dim", default: 1280, in: ConfigRange.size)
        encoderHidDim = try c.int("encoder_hid_dim", in: ConfigRange.size)
        try c.require("encoder_hid_dim_type", in: ["image_proj"])
        additionEmbedType = try c.string("addition_embed_type", default: nil) ?? ""
        guard ["image", "image_hint"].contains(additionEmbedType) else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "addition_embed_type", value: additionEmbedType)
        }
        normNumGroups = try c.int("norm_num_groups", default: 32, in: ConfigRange.count)
        normEps = Float(try c.double("norm_eps", default: 1e-5, in: ConfigRange.epsilon))
        let shift = try c.string("resnet_time_scale_shift", default: "default")!
        guard shift == "scale_shift" || shift == "default" else { throw CheckpointError.unsupportedConfig(path: c.path, key: "resnet_time_scale_shift", value: shift) }
        scaleShift = shift == "scale_shift"
        flipSinToCos = try c.bool("flip_sin_to_cos", default: true)
        freqShift = try c.int("freq_shift", default: 0)
        let act = try c.string("act_fn", default: "silu")!
        guard act == "silu" else { throw CheckpointError.unsupportedConfig(path: c.path, key: "act_fn", value: act) }
        convInKernel = try c.int("conv_in_kernel", default: 3, in: ConfigRange.kernel)
        convOutKernel = try c.int("conv_out_kernel", default: 3, in: ConfigRange.kernel)
        // Behaviours we implement only at their Kandinsky 2.2 values.
        try c.require("center_input_sample", in: [false])
        try c.require("class_embed_type", in: [])
        try c.require("num_class_embeds", in: [])
        try c.require("time_embedding_type", in: ["positional"])
        try c.require("time_embedding_dim", in: [])
        try c.require("time_embedding_act_fn", in: [])
        try c.require("timestep_post_act", in: [])
        try c.require("time_cond_proj_dim", in: [])
        try c.require("only_cross_attention", in: [false])
        try c.require("dual_cross_attention", in: [false])
        try c.require("use_linear_projection", in: [false])
        try c.require("upcast_attention", in: [false])
        try c.require("cross_attention_norm", in: [])
        try c.require("mid_block_only_cross_attention", in: [])
        try c.require("resnet_skip_time_act", in: [false])
        try c.require("resnet_out_scale_factor", in: [1])
        try c.require("mid_block_scale_factor", in: [1])
        try c.require("attention_type", in: ["default"])
        try c.require("class_embeddings_concat", in: [false])
        try c.require("addition_time_embed_dim", in: [])
        try c.require("projection_class_embeddings_input_dim", in: [])
        try c.require("transformer_layers_per_block", in: [1])
        try c.require("reverse_transformer_layers_per_block", in: [])
        // Unused by these blocks: downsampling is by resnet, dropout is inference-off, heads for the unused addition path.
        c.ignore(["downsample_padding", "dropout", "addition_embed_type_num_heads", "sample_size"])
        try c.finish()
    }

    public var timeEmbedDim: Int { blockOutChannels[0] * 4 }
}

public final class UNet2DConditionModel {
    public let config: UNetConfig
    let convIn: Conv2d
    /// For tests of the weight storage.
    public var convInWeight: Weight { convIn.weight }
    let timeEmbedding: TimestepEmbedding
    let encoderHidProj: ImageProjection
    let addEmbedding: ImageTimeEmbedding
    let downBlocks: [DownBlock]
    let midBlock: MidBlock
    let upBlocks: [UpBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    public init(config: UNetConfig, weights store: WeightStore) throws {
        self.config = config
        let w = store.scope("")
        let boc = config.blockOutChannels
        let tdim = config.timeEmbedDim
        convIn = try Conv2d(w.scope("conv_in"), in: config.inChannels, out: boc[0], kernel: config.convInKernel)
        timeEmbedding = try TimestepEmbedding(w.scope("time_embedding"), in: boc[0], dim: tdim, act: .silu)
        encoderHidProj = try ImageProjection(w.scope("encoder_hid_proj"), imageEmbedDim: config.encoderHidDim, crossDim: config.crossAttentionDim)
        addEmbedding = try ImageTimeEmbedding(w.scope("add_embedding"), imageEmbedDim: config.encoderHidDim, timeEmbedDim: tdim,
                                              withHint: config.additionEmbedType == "image_hint")
        let s = BlockSettings(tembChannels: tdim, groups: config.normNumGroups, eps: config.normEps, scaleShift: config.scaleShift,
                              contextDim: config.crossAttentionDim)
        var down: [DownBlock] = []
        var out = boc[0]
        for (i, type) in config.downBlockTypes.enumerated() {
            let inC = out
            out = boc[i]
            down.append(try DownBlock(w.scope("down_blocks", i), type: type, in: inC, out: out, layers: config.layersPerBlock,
                                      headDim: config.attentionHeadDim[i], addDownsample: i < boc.count - 1, s: s))
        }
        downBlocks = down
        midBlock = try MidBlock(w.scope("mid_block"), channels: boc.last!, headDim: config.attentionHeadDim.last!, s: s)
        let rboc = Array(boc.reversed()), rhead = Array(config.attentionHeadDim.reversed())
        var up: [UpBlock] = []
        var outC = rboc[0]
        for (i, type) in config.upBlockTypes.enumerated() {
            let prev = outC
            outC = rboc[i]
            let inC = rboc[min(i + 1, rboc.count - 1)]
            up.append(try UpBlock(w.scope("up_blocks", i), type: type, in: inC, prevOut: prev, out: outC, layers: config.layersPerBlock + 1,
                                  headDim: rhead[i], addUpsample: i < rboc.count - 1, s: s))
        }
        upBlocks = up
        convNormOut = try GroupNorm(w.scope("conv_norm_out"), groups: config.normNumGroups, channels: boc[0], eps: config.normEps)
        convOut = try Conv2d(w.scope("conv_out"), in: boc[0], out: config.outChannels, kernel: config.convOutKernel)
        try store.finish()
    }

    /// Loads `folder/config.json` and the folder's weights.
    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let cfg = try UNetConfig(ConfigReader(path: (folder as NSString).appendingPathComponent("config.json")))
        try self.init(config: cfg, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    /// sample [B, in_channels(- 4 with a hint), H, W]; imageEmbeds [B, encoder_hid_dim]; hint [B, 3, 8H, 8W] for image_hint.
    /// Returns [B, out_channels, H, W].
    public func callAsFunction(sample: Tensor, timestep: Float, imageEmbeds: Tensor, hint: Tensor? = nil) -> Tensor {
        let batch = sample.dim(0)
        let tFeat = timestepFeatures(Array(repeating: timestep, count: batch), dim: config.blockOutChannels[0],
                                     flipSinToCos: config.flipSinToCos, shift: Float(config.freqShift))
        let emb = timeEmbedding(tFeat)
        addInPlace(emb, addEmbedding.embed(imageEmbeds))
        var x = sample
        if config.additionEmbedType == "image_hint" {
            guard let hint else { fatalError("UNet with image_hint needs a hint") }
            x = concat([x, addEmbedding.encodeHint(hint)], axis: 1)
        }
        let context = encoderHidProj(imageEmbeds)
        let cond = UNetConditioning(tembActivated: activated(.silu, emb), context: context)

        var h = convIn(x)
        var skips = [h]
        for block in downBlocks {
            let (out, s) = block(h, cond)
            h = out
            skips += s
        }
        h = midBlock(h, cond)
        for block in upBlocks { h = block(h, skips: &skips, cond) }
        return convOut(convNormOut(h, silu: true)).planar()
    }
}
