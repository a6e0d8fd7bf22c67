// transformers models/clip/modeling_clip.py: CLIPTextModelWithProjection and CLIPVisionModelWithProjection.
import Checkpoint
import Foundation
import TensorCore

public struct CLIPConfig {
    public var hiddenSize = 512, intermediateSize = 2048, heads = 8, layers = 12
    public var projectionDim = 512
    public var act = Activation.quickGELU
    public var layerNormEps: Float = 1e-5
    // text
    public var vocabSize = 49408, maxPositions = 77, eosTokenId = 2
    // vision
    public var imageSize = 224, patchSize = 32, channels = 3

    public init() {}

    /// Decodes a transformers config.json (a CLIPTextConfig/CLIPVisionConfig, or a CLIPConfig's text/vision part).
    public init(_ c: ConfigReader, vision: Bool) throws {
        hiddenSize = try c.int("hidden_size", default: vision ? 768 : 512, in: ConfigRange.size)
        intermediateSize = try c.int("intermediate_size", default: vision ? 3072 : 2048, in: ConfigRange.size)
        heads = try c.int("num_attention_heads", default: vision ? 12 : 8, in: ConfigRange.count)
        layers = try c.int("num_hidden_layers", default: 12, in: ConfigRange.count)
        projectionDim = try c.int("projection_dim", default: 512, in: ConfigRange.size)
        let a = try c.string("hidden_act", default: "quick_gelu")!
        guard let act = Activation(configName: a), act == .gelu || act == .quickGELU || act == .relu else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "hidden_act", value: a)
        }
        self.act = act
        layerNormEps = Float(try c.double("layer_norm_eps", default: 1e-5, in: ConfigRange.epsilon))
        if vision {
            imageSize = try c.int("image_size", default: 224, in: ConfigRange.size)
            patchSize = try c.int("patch_size", default: 32, in: 1...imageSize)
            channels = try c.int("num_channels", default: 3, in: ConfigRange.count)
        } else {
            vocabSize = try c.int("vocab_size", default: 49408, in: ConfigRange.size)
            maxPositions = try c.int("max_position_embeddings", default: 77, in: ConfigRange.size)
            eosTokenId = try c.int("eos_token_id", default: 2)
        }
        // Training settings, metadata and token ids used only by the tokenizer.
        TransformersConfig.ignoreBookkeeping(c)
        try c.finish()
    }
}

/// CLIPEncoderLayer: pre-LN self-attention and MLP, both residual.
struct CLIPEncoderLayer {
    let ln1: LayerNorm, ln2: LayerNorm
    let q: Linear, k: Linear, v: Linear, out: Linear
    let fc1: Linear, fc2: Linear
    let heads: Int, act: Activation

    init(_ w: WeightScope, _ c: CLIPConfig) throws {
        let d = c.hiddenSize
        ln1 = try LayerNorm(w.scope("layer_norm1"), dim: d, eps: c.layerNormEps)
        ln2 = try LayerNorm(w.scope("layer_norm2"), dim: d, eps: c.layerNormEps)
        let a = w.scope("self_attn")
        q = try Linear(a.scope("q_proj"), in: d, out: d)
        k = try Linear(a.scope("k_proj"), in: d, out: d)
        v = try Linear(a.scope("v_proj"), in: d, out: d)
        out = try Linear(a.scope("out_proj"), in: d, out: d)
        fc1 = try Linear(w.scope("mlp.fc1"), in: d, out: c.intermediateSize)
        fc2 = try Linear(w.scope("mlp.fc2"), in: c.intermediateSize, out: d)
        heads = c.heads
        act = c.act
    }

    func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let n = ln1(x)
        let headDim = x.dim(-1) / heads
        let h = out(attention(q: q(n), k: k(n), v: v(n), heads: heads, scale: 1 / Float(headDim).squareRoot(),
                              mask: mask, precision: q.weight.precision))
        addInPlace(h, x)
        let f = fc1(ln2(h))
        applyActivation(act, f)
        let o = fc2(f)
        addInPlace(o, h)
        return o
    }
}

public final class CLIPTextModelWithProjection {
    public let config: CLIPConfig
    let tokenEmbedding: Tensor, positionEmbedding: Tensor
    let layers: [CLIPEncoderLayer]
    let finalLN: LayerNorm
    let textProjection: Linear

    public init(config: CLIPConfig, weights store: WeightStore) throws {
        self.config = config
        let w = store.scope("text_model")
        tokenEmbedding = try w.tensor("embeddings.token_embedding.weight", [config.vocabSize, config.hiddenSize])
        positionEmbedding = try w.tensor("embeddings.position_embedding.weight", [config.maxPositions, config.hiddenSize])
        layers = try (0..<config.layers).map { try CLIPEncoderLayer(w.scope("encoder.layers", $0), config) }
        finalLN = try LayerNorm(w.scope("final_layer_norm"), dim: config.hiddenSize, eps: config.layerNormEps)
        textProjection = try Linear(store.scope("text_projection"), in: config.hiddenSize, out: config.projectionDim, bias: false)
        // position_ids is a buffer that older transformers versions saved with the weights.
        _ = store.entry("text_model.embeddings.position_ids").map { _ in try? store.tensor("text_model.embeddings.position_ids", shape: [1, config.maxPositions]) }
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let cfg = try CLIPConfig(ConfigReader(path: (folder as NSString).appendingPathComponent("config.json")), vision: false)
        try self.init(config: cfg, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    /// ids [B][T] -> (text_embeds [B, proj], last_hidden_state [B, T, hidden]). No padding mask (the prior
    /// pipeline passes none); attention is causal.
    public func callAsFunction(_ ids: [[Int]]) -> (textEmbeds: Tensor, lastHiddenState: Tensor) {
        let b = ids.count, t = ids[0].count, d = config.hiddenSize
        let x = Tensor(shape: [b, t, d])
        for (bi, row) in ids.enumerated() {
            for (i, id) in row.enumerated() {
                let dst = x.data + (bi * t + i) * d
                let tok = tokenEmbedding.data + id * d, pos = positionEmbedding.data + i * d
                for j in 0..<d { dst[j] = tok[j] + pos[j] }
            }
        }
        let mask = Tensor(shape: [b, t, t], filledWith: 0)
        for bi in 0..<b { for q in 0..<t { for k in (q + 1)..<max(t, q + 1) { mask.data[(bi * t + q) * t + k] = -Float.greatestFiniteMagnitude } } }
        var h = x
        for l in layers { h = l(h, mask: mask) }
        h = finalLN(h)
        // Pooling: transformers' legacy rule (eos_token_id == 2) takes the highest id; otherwise the first eos.
        let pooled = Tensor(shape: [b, d])
        for (bi, row) in ids.enumerated() {
            let pos: Int
            if config.eosTokenId == 2 {
                pos = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
            } else {
                pos = row.firstIndex(of: config.eosTokenId) ?? 0
            }
            (pooled.data + bi * d).update(from: h.data + (bi * t + pos) * d, count: d)
        }
        return (textProjection(pooled), h)
    }
}

public final class CLIPVisionModelWithProjection {
    public let config: CLIPConfig
    let classEmbedding: Tensor
    let patchEmbedding: Conv2d
    let positionEmbedding: Tensor
    let preLN: LayerNorm, postLN: LayerNorm
    let layers: [CLIPEncoderLayer]
    let visualProjection: Linear

    public init(config: CLIPConfig, weights store: WeightStore) throws {
        self.config = config
        let w = store.scope("vision_model")
        let d = config.hiddenSize
        let patches = (config.imageSize / config.patchSize) * (config.imageSize / config.patchSize)
        classEmbedding = try w.tensor("embeddings.class_embedding", [d])
        patchEmbedding = try Conv2d(w.scope("embeddings.patch_embedding"), in: config.channels, out: d, kernel: config.patchSize,
                                    stride: config.patchSize, padding: .symmetric(0), bias: false)
        positionEmbedding = try w.tensor("embeddings.position_embedding.weight", [patches + 1, d])
        preLN = try LayerNorm(w.scope("pre_layrnorm"), dim: d, eps: config.layerNormEps)
        layers = try (0..<config.layers).map { try CLIPEncoderLayer(w.scope("encoder.layers", $0), config) }
        postLN = try LayerNorm(w.scope("post_layernorm"), dim: d, eps: config.layerNormEps)
        visualProjection = try Linear(store.scope("visual_projection"), in: d, out: config.projectionDim, bias: false)
        _ = store.entry("vision_model.embeddings.position_ids").map { _ in try? store.tensor("vision_model.embeddings.position_ids", shape: [1, patches + 1]) }
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let cfg = try CLIPConfig(ConfigReader(path: (folder as NSString).appendingPathComponent("config.json")), vision: true)
        try self.init(config: cfg, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    /// pixelValues [B, 3, S, S] (normalised) -> image_embeds [B, proj].
    public func callAsFunction(_ pixelValues: Tensor) -> Tensor {
        let b = pixelValues.dim(0), d = config.hiddenSize
        let p = patchEmbedding(pixelValues)                       // [B, d, g, g]
        let n = p.dim(2) * p.dim(3)
        var h = preLN(classAndPatchTokens(p, classEmbedding: classEmbedding, positions: positionEmbedding))
        for l in layers { h = l(h, mask: nil) }
        let cls = Tensor(shape: [b, d])
        for bi in 0..<b { (cls.data + bi * d).update(from: h.data + bi * (n + 1) * d, count: d) }
        return visualProjection(postLN(cls))
    }
}
