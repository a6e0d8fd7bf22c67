// transformers models/dinov2/modeling_dinov2.py: Dinov2Backbone, the ViT Depth Anything reads its stages from.
import Checkpoint
import Foundation
import TensorCore

/// Dinov2Config, as a DepthAnythingConfig's backbone_config.
public struct Dinov2Config {
    public var encoder = ViTEncoderConfig(hiddenSize: 384, layers: 12, heads: 6, layerNormEps: 1e-6, imageSize: 518,
                                          patchSize: 14)
    public var mlpRatio = 4.0
    public var applyLayernorm = true
    /// Encoder layers whose outputs the backbone returns (1-based: stage N is layer N's output).
    public var outIndices = [9, 10, 11, 12]

    public init() {}

    public init(_ c: ConfigReader) throws {
        encoder = try ViTEncoderConfig(c, defaults: encoder)
        mlpRatio = try c.double("mlp_ratio", default: 4, in: 0.01...64)
        applyLayernorm = try c.bool("apply_layernorm", default: true)
        // out_indices wins when both are written (transformers keeps them in step); else stage names.
        if c.values["out_indices"] is [Any] {
            outIndices = try c.ints("out_indices", in: 0...encoder.layers)
            c.ignore(["out_features"])
        } else {
            let names = try c.strings("out_features", default: outIndices.map { "stage\($0)" })
            outIndices = try names.map { name in
                guard name.hasPrefix("stage"), let index = Int(name.dropFirst(5)), (0...encoder.layers).contains(index) else {
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

    var mlpWidth: Int { Int(Double(encoder.hiddenSize) * mlpRatio) }
}

/// Dinov2Layer: pre-LN attention and MLP, each scaled per channel (layer_scale) before its residual add.
struct Dinov2Layer {
    let norm1: LayerNorm, norm2: LayerNorm
    let attention: ViTAttention
    let layerScale1: Tensor, layerScale2: Tensor
    let fc1: Linear, fc2: Linear
    let act: Activation

    init(_ w: WeightScope, _ config: Dinov2Config) throws {
        let c = config.encoder
        norm1 = try LayerNorm(w.scope("norm1"), dim: c.hiddenSize, eps: c.layerNormEps)
        norm2 = try LayerNorm(w.scope("norm2"), dim: c.hiddenSize, eps: c.layerNormEps)
        attention = try ViTAttention(w.scope("attention"), c)
        layerScale1 = try w.tensor("layer_scale1.lambda1", [c.hiddenSize])
        layerScale2 = try w.tensor("layer_scale2.lambda1", [c.hiddenSize])
        fc1 = try Linear(w.scope("mlp.fc1"), in: c.hiddenSize, out: config.mlpWidth)
        fc2 = try Linear(w.scope("mlp.fc2"), in: config.mlpWidth, out: c.hiddenSize)
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

    init(_ w: WeightScope, _ config: Dinov2Config) throws {
        self.config = config
        let c = config.encoder
        let e = w.scope("embeddings")
        embeddings = try ViTEmbeddings(e, c)
        // The mask token replaces masked patches in self-supervised training only.
        if e.has("mask_token") { _ = try e.tensor("mask_token", [1, c.hiddenSize]) }
        layers = try (0..<c.layers).map { try Dinov2Layer(w.scope("encoder.layer", $0), config) }
        layernorm = try LayerNorm(w.scope("layernorm"), dim: c.hiddenSize, eps: c.layerNormEps)
    }

    func callAsFunction(_ pixelValues: Tensor) -> [Tensor] {
        let (height, width) = (pixelValues.dim(2), pixelValues.dim(3))
        let patch = config.encoder.patchSize
        let grid = (height: height / patch, width: width / patch)
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
