// transformers models/depth_anything/modeling_depth_anything.py (DepthAnythingForDepthEstimation, as
// depth-anything/Depth-Anything-V2-Small-hf) on transformers models/dinov2/modeling_dinov2.py (Dinov2Backbone).
import Checkpoint
import Foundation
import TensorCore

/// Dinov2Config, as a DepthAnythingConfig's backbone_config.
public struct Dinov2Config {
    public var hiddenSize = 384, layers = 12, heads = 6
    public var mlpRatio = 4.0
    public var act = Activation.gelu
    public var layerNormEps: Float = 1e-6
    public var imageSize = 518, patchSize = 14, channels = 3
    public var qkvBias = true
    public var applyLayernorm = true
    /// Encoder layers whose outputs the backbone returns (1-based: stage N is layer N's output).
    public var outIndices = [9, 10, 11, 12]

    public init() {}

    public init(_ c: ConfigReader) throws {
        hiddenSize = try c.int("hidden_size", default: hiddenSize, in: ConfigRange.size)
        layers = try c.int("num_hidden_layers", default: layers, in: ConfigRange.count)
        heads = try c.int("num_attention_heads", default: heads, in: ConfigRange.count)
        mlpRatio = try c.double("mlp_ratio", default: 4, in: 0.01...64)
        let actName = try c.string("hidden_act", default: "gelu")!
        guard let act = Activation(configName: actName) else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "hidden_act", value: actName)
        }
        self.act = act
        layerNormEps = Float(try c.double("layer_norm_eps", default: 1e-6, in: ConfigRange.epsilon))
        imageSize = try c.int("image_size", default: imageSize, in: ConfigRange.size)
        patchSize = try c.int("patch_size", default: patchSize, in: 1...imageSize)
        channels = try c.int("num_channels", default: channels, in: ConfigRange.count)
        qkvBias = try c.bool("qkv_bias", default: true)
        applyLayernorm = try c.bool("apply_layernorm", default: true)
        // out_indices wins when both are written (transformers keeps them in step); else stage names.
        if c.values["out_indices"] is [Any] {
            outIndices = try c.ints("out_indices", in: 0...layers)
            c.ignore(["out_features"])
        } else {
            let names = try c.strings("out_features", default: outIndices.map { "stage\($0)" })
            outIndices = try names.map { name in
                guard name.hasPrefix("stage"), let index = Int(name.dropFirst(5)), (0...layers).contains(index) else {
                    throw CheckpointError.unsupportedConfig(path: c.path, key: "out_features", value: name)
                }
                return index
            }
        }
        // SwiGLU feed-forward (the giant model) and 4D feature maps are not implemented.
        try c.require("use_swiglu_ffn", in: [false])
        try c.require("reshape_hidden_states", in: [false])
        TransformersConfig.ignoreBookkeeping(c)
        // layerscale_value only initialises layer_scale*.lambda1, which the weights carry; intermediate_size is
        // unused by Dinov2 (the MLP is hidden_size * mlp_ratio wide).
        c.ignore(["layerscale_value", "use_mask_token", "stage_names", "intermediate_size"])
        try c.finish()
    }

    var mlpWidth: Int { Int(Double(hiddenSize) * mlpRatio) }
}

/// Dinov2Layer: pre-LN attention and MLP, each scaled per channel (layer_scale) before its residual add.
struct Dinov2Layer {
    let norm1: LayerNorm, norm2: LayerNorm
    let attention: ViTAttention
    let layerScale1: Tensor, layerScale2: Tensor
    let fc1: Linear, fc2: Linear
    let act: Activation

    init(_ w: WeightScope, _ c: Dinov2Config) throws {
        norm1 = try LayerNorm(w.scope("norm1"), dim: c.hiddenSize, eps: c.layerNormEps)
        norm2 = try LayerNorm(w.scope("norm2"), dim: c.hiddenSize, eps: c.layerNormEps)
        attention = try ViTAttention(w.scope("attention"), hiddenSize: c.hiddenSize, heads: c.heads, qkvBias: c.qkvBias)
        layerScale1 = try w.tensor("layer_scale1.lambda1", [c.hiddenSize])
        layerScale2 = try w.tensor("layer_scale2.lambda1", [c.hiddenSize])
        fc1 = try Linear(w.scope("mlp.fc1"), in: c.hiddenSize, out: c.mlpWidth)
        fc2 = try Linear(w.scope("mlp.fc2"), in: c.mlpWidth, out: c.hiddenSize)
        act = c.act
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = attention(norm1(x))
        scaleChannels(h, layerScale1)
        addInPlace(h, x)
        let f = fc1(norm2(h))
        applyActivation(act, f)
        let o = fc2(f)
        scaleChannels(o, layerScale2)
        addInPlace(o, h)
        return o
    }

    private func scaleChannels(_ x: Tensor, _ scale: Tensor) {
        let dim = scale.count
        for row in 0..<(x.count / dim) {
            let p = x.data + row * dim
            for d in 0..<dim { p[d] *= scale.data[d] }
        }
    }
}

/// Dinov2Backbone: token sequences [B, 1 + h*w, D] of the configured stages, after the final LayerNorm.
struct Dinov2Backbone {
    let config: Dinov2Config
    let embeddings: ViTEmbeddings
    let layers: [Dinov2Layer]
    let layernorm: LayerNorm

    init(_ w: WeightScope, _ c: Dinov2Config) throws {
        config = c
        let e = w.scope("embeddings")
        embeddings = try ViTEmbeddings(e, hiddenSize: c.hiddenSize, imageSize: c.imageSize, patchSize: c.patchSize,
                                       channels: c.channels)
        // The mask token replaces masked patches in self-supervised training only.
        if e.has("mask_token") { _ = try e.tensor("mask_token", [1, c.hiddenSize]) }
        layers = try (0..<c.layers).map { try Dinov2Layer(w.scope("encoder.layer", $0), c) }
        layernorm = try LayerNorm(w.scope("layernorm"), dim: c.hiddenSize, eps: c.layerNormEps)
    }

    func callAsFunction(_ pixelValues: Tensor) -> [Tensor] {
        let (height, width) = (pixelValues.dim(2), pixelValues.dim(3))
        let grid = (height: height / config.patchSize, width: width / config.patchSize)
        let trained = embeddings.trainedGrid
        // Dinov2Embeddings.interpolate_pos_encoding: bicubic (align_corners=False) unless the patch count matches
        // the trained one and the picture is square.
        let positions = grid.height * grid.width == trained * trained && height == width
            ? embeddings.positionEmbeddings
            : embeddings.positions(height: grid.height, width: grid.width) {
                interpolateBicubic($0, height: $1, width: $2)
            }
        var hidden = embeddings(pixelValues, positions: positions)
        var stages = [hidden]
        for layer in layers {
            hidden = layer(hidden)
            stages.append(hidden)
        }
        return config.outIndices.map { config.applyLayernorm ? layernorm(stages[$0]) : stages[$0] }
    }
}

public struct DepthAnythingConfig {
    public var backbone = Dinov2Config()
    public var patchSize = 14
    public var reassembleHiddenSize = 384
    public var reassembleFactors: [Double] = [4, 2, 1, 0.5]
    public var neckHiddenSizes = [48, 96, 192, 384]
    public var fusionHiddenSize = 64
    public var headInIndex = -1
    public var headHiddenSize = 32
    /// "relative": ReLU output; "metric": sigmoid times max_depth.
    public var metric = false
    public var maxDepth: Float = 1

    public init() {}

    public init(_ c: ConfigReader) throws {
        guard let backboneValues = c.values["backbone_config"] as? [String: Any] else {
            throw CheckpointError.badConfig(path: c.path, reason: "backbone_config (a Dinov2Config) is missing")
        }
        c.ignore(["backbone_config"])
        let backboneReader = ConfigReader(path: c.path + " backbone_config", values: backboneValues)
        try backboneReader.require("model_type", in: ["dinov2"])
        backbone = try Dinov2Config(backboneReader)
        patchSize = try c.int("patch_size", default: patchSize, in: ConfigRange.kernel)
        reassembleHiddenSize = try c.int("reassemble_hidden_size", default: backbone.hiddenSize, in: ConfigRange.size)
        reassembleFactors = try DPTConfig.factors(c)
        neckHiddenSizes = try c.ints("neck_hidden_sizes", default: neckHiddenSizes, in: ConfigRange.size)
        fusionHiddenSize = try c.int("fusion_hidden_size", default: fusionHiddenSize, in: ConfigRange.size)
        headInIndex = try c.int("head_in_index", default: -1)
        headHiddenSize = try c.int("head_hidden_size", default: headHiddenSize, in: ConfigRange.size)
        let kind = try c.string("depth_estimation_type", default: "relative")!
        guard kind == "relative" || kind == "metric" else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "depth_estimation_type", value: kind)
        }
        metric = kind == "metric"
        maxDepth = Float(try c.double("max_depth", default: 1, in: 1e-6...1e6))
        let stages = neckHiddenSizes.count
        guard backbone.outIndices.count == stages, reassembleFactors.count == stages,
            reassembleHiddenSize == backbone.hiddenSize, (-stages..<stages).contains(headInIndex)
        else {
            throw CheckpointError.badConfig(
                path: c.path, reason: "the backbone's out_features, neck_hidden_sizes and reassemble_factors need one"
                    + " entry per stage, reassemble_hidden_size must be the backbone's hidden_size, and"
                    + " head_in_index must name a stage")
        }
        try c.require("backbone", in: [])
        TransformersConfig.ignoreBookkeeping(c)
        c.ignore(["use_pretrained_backbone", "use_timm_backbone", "backbone_kwargs"])
        try c.finish()
    }
}

/// DepthAnythingDepthEstimationHead: conv 3x3 to F/2, bilinear to the patch grid times patch size
/// (align_corners=True), conv 3x3, ReLU, conv 1x1 to one channel, ReLU (relative) or sigmoid * max_depth (metric).
struct DepthAnythingDepthEstimationHead {
    let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    let metric: Bool, maxDepth: Float

    init(_ w: WeightScope, _ c: DepthAnythingConfig) throws {
        conv1 = try Conv2d(w.scope("conv1"), in: c.fusionHiddenSize, out: c.fusionHiddenSize / 2, kernel: 3)
        conv2 = try Conv2d(w.scope("conv2"), in: c.fusionHiddenSize / 2, out: c.headHiddenSize, kernel: 3)
        conv3 = try Conv2d(w.scope("conv3"), in: c.headHiddenSize, out: 1, kernel: 1)
        metric = c.metric
        maxDepth = c.maxDepth
    }

    func callAsFunction(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let up = interpolateBilinear(conv1(x).planar(), height: height, width: width, alignCorners: true)
        let second = conv2(up)
        applyActivation(.relu, second)
        let depth = conv3(second).planar()
        if metric {
            for i in 0..<depth.count { depth.data[i] = (1 / (1 + expf(-depth.data[i]))) * maxDepth }
        } else {
            applyActivation(.relu, depth)
            if maxDepth != 1 { for i in 0..<depth.count { depth.data[i] *= maxDepth } }
        }
        return depth.reshaped([depth.dim(0), depth.dim(2), depth.dim(3)])
    }
}

public final class DepthAnythingForDepthEstimation: DepthEstimationModel {
    public let config: DepthAnythingConfig
    let backbone: Dinov2Backbone
    let neck: DPTNeck
    let head: DepthAnythingDepthEstimationHead

    public init(config: DepthAnythingConfig, weights store: WeightStore) throws {
        self.config = config
        backbone = try Dinov2Backbone(store.scope("backbone"), config.backbone)
        let neckConfig = DPTNeckConfig(
            hiddenSize: config.reassembleHiddenSize, neckHiddenSizes: config.neckHiddenSizes,
            reassembleFactors: config.reassembleFactors, fusionHiddenSize: config.fusionHiddenSize,
            readout: .ignore, readoutActivation: config.backbone.act, residualBias: true, upsampleToNextMap: true)
        neck = try DPTNeck(store.scope("neck"), neckConfig)
        head = try DepthAnythingDepthEstimationHead(store.scope("head"), config)
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let path = (folder as NSString).appendingPathComponent("config.json")
        let config = try DepthAnythingConfig(ConfigReader(path: path))
        try self.init(config: config, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    public var patchSize: Int { config.backbone.patchSize }
    public var needsSquareInput: Bool { false }

    public func callAsFunction(_ pixelValues: Tensor) -> Tensor {
        // The neck and head use the model's patch_size, the grid the backbone's; released models make them equal.
        let patchHeight = pixelValues.dim(2) / config.patchSize, patchWidth = pixelValues.dim(3) / config.patchSize
        let fused = neck(backbone(pixelValues), patchHeight: patchHeight, patchWidth: patchWidth)
        let last = fused[(config.headInIndex + fused.count) % fused.count]
        return head(last, height: patchHeight * config.patchSize, width: patchWidth * config.patchSize)
    }
}
