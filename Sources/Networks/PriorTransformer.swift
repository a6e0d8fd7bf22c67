// diffusers models/transformers/prior_transformer.py: maps a text embedding and the text tokens to a CLIP image
// embedding. Token order: [text tokens, text embedding, time embedding, noisy image embedding, prd token].
import Checkpoint
import Foundation
import TensorCore

public struct PriorConfig {
    public var heads = 32, headDim = 64, layers = 20
    public var embeddingDim = 768
    public var numEmbeddings = 77
    public var additionalEmbeddings = 4
    public var timeEmbedAct = Activation.silu
    public var timeEmbedDim: Int?
    public var embeddingProjDim: Int?
    public var clipEmbedDim: Int?
    public var hasEncoderHidProj = true

    public init() {}

    public init(_ c: ConfigReader) throws {
        heads = try c.int("num_attention_heads", default: 32, in: ConfigRange.count)
        headDim = try c.int("attention_head_dim", default: 64, in: ConfigRange.size)
        layers = try c.int("num_layers", default: 20, in: ConfigRange.count)
        embeddingDim = try c.int("embedding_dim", default: 768, in: ConfigRange.size)
        numEmbeddings = try c.int("num_embeddings", default: 77, in: ConfigRange.size)
        additionalEmbeddings = try c.int("additional_embeddings", default: 4, in: 0...1024)
        let act = try c.string("time_embed_act_fn", default: "silu")!
        guard let a = Activation(configName: act) else { throw CheckpointError.unsupportedConfig(path: c.path, key: "time_embed_act_fn", value: act) }
        timeEmbedAct = a
        func optInt(_ k: String) throws -> Int? { c.values[k] == nil || c.values[k] is NSNull ? { c.ignore([k]); return nil }() : try c.int(k) }
        timeEmbedDim = try optInt("time_embed_dim")
        embeddingProjDim = try optInt("embedding_proj_dim")
        clipEmbedDim = try optInt("clip_embed_dim")
        let hid = try c.string("encoder_hid_proj_type", default: "linear")
        guard hid == nil || hid == "linear" else { throw CheckpointError.unsupportedConfig(path: c.path, key: "encoder_hid_proj_type", value: hid!) }
        hasEncoderHidProj = hid != nil
        try c.require("added_emb_type", in: ["prd"])
        try c.require("norm_in_type", in: [])
        try c.require("embedding_proj_norm_type", in: [])
        c.ignore(["dropout"])
        try c.finish()
    }

    public var innerDim: Int { heads * headDim }
    public var tokens: Int { numEmbeddings + additionalEmbeddings }
}

/// BasicTransformerBlock as the prior configures it: LN -> self-attention -> LN -> GELU feed-forward.
struct PriorBlock {
    let norm1: LayerNorm, norm3: LayerNorm
    let attn: AttentionProjections
    let ffIn: Linear, ffOut: Linear

    init(_ w: WeightScope, dim: Int, heads: Int, headDim: Int) throws {
        norm1 = try LayerNorm(w.scope("norm1"), dim: dim)
        attn = try AttentionProjections(w.scope("attn1"), queryDim: dim, heads: heads, headDim: headDim)
        norm3 = try LayerNorm(w.scope("norm3"), dim: dim)
        ffIn = try Linear(w.scope("ff.net.0.proj"), in: dim, out: 4 * dim)
        ffOut = try Linear(w.scope("ff.net.2"), in: 4 * dim, out: dim)
    }

    func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let h = attn(norm1(x), mask: mask)
        addInPlace(h, x)
        let f = ffIn(norm3(h))
        applyActivation(.gelu, f)
        let out = ffOut(f)
        addInPlace(out, h)
        return out
    }
}

public final class PriorTransformer {
    public let config: PriorConfig
    let timeEmbedding: TimestepEmbedding
    let projIn: Linear, embeddingProj: Linear
    let encoderHidProj: Linear?
    let positionalEmbedding: Tensor  // [1, tokens, inner]
    let prdEmbedding: Tensor         // [1, 1, inner]
    let blocks: [PriorBlock]
    let normOut: LayerNorm
    let projToClip: Linear
    public let clipMean: Tensor, clipStd: Tensor  // [1, clip dim]

    public init(config: PriorConfig, weights store: WeightStore) throws {
        self.config = config
        let w = store.scope("")
        let inner = config.innerDim, emb = config.embeddingDim
        let clipDim = config.clipEmbedDim ?? emb
        timeEmbedding = try TimestepEmbedding(w.scope("time_embedding"), in: inner, dim: config.timeEmbedDim ?? inner, act: config.timeEmbedAct)
        projIn = try Linear(w.scope("proj_in"), in: emb, out: inner)
        embeddingProj = try Linear(w.scope("embedding_proj"), in: config.embeddingProjDim ?? emb, out: inner)
        encoderHidProj = config.hasEncoderHidProj ? try Linear(w.scope("encoder_hidden_states_proj"), in: emb, out: inner) : nil
        positionalEmbedding = try w.tensor("positional_embedding", [1, config.tokens, inner])
        prdEmbedding = try w.tensor("prd_embedding", [1, 1, inner])
        blocks = try (0..<config.layers).map { try PriorBlock(w.scope("transformer_blocks", $0), dim: inner, heads: config.heads, headDim: config.headDim) }
        normOut = try LayerNorm(w.scope("norm_out"), dim: inner)
        projToClip = try Linear(w.scope("proj_to_clip_embeddings"), in: inner, out: clipDim)
        clipMean = try w.tensor("clip_mean", [1, clipDim])
        clipStd = try w.tensor("clip_std", [1, clipDim])
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let cfg = try PriorConfig(ConfigReader(path: (folder as NSString).appendingPathComponent("config.json")))
        try self.init(config: cfg, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    /// hiddenStates [B, emb] (noisy, normalised image embedding); projEmbedding [B, emb] (text_embeds);
    /// encoderHiddenStates [B, 77, emb]; textMask [B, 77] of 0/1. Returns predicted_image_embedding [B, clip dim].
    public func callAsFunction(hiddenStates: Tensor, timestep: Float, projEmbedding: Tensor, encoderHiddenStates: Tensor,
                               textMask: [[Bool]]?) -> Tensor {
        let b = hiddenStates.dim(0), inner = config.innerDim, n = config.tokens
        let tFeat = timestepFeatures(Array(repeating: timestep, count: b), dim: inner, flipSinToCos: true, shift: 0)
        let timeEmb = timeEmbedding(tFeat).reshaped([b, 1, inner])
        let proj = embeddingProj(projEmbedding).reshaped([b, 1, inner])
        let text = encoderHidProj.map { $0(encoderHiddenStates) } ?? encoderHiddenStates
        let hidden = projIn(hiddenStates).reshaped([b, 1, inner])
        let prd = concat(Array(repeating: prdEmbedding, count: b), axis: 0)
        let x = concat([text, proj, timeEmb, hidden, prd], axis: 1)
        shapeCheck(x.dim(1) == n, "prior: \(x.dim(1)) tokens but positional_embedding has \(n)")
        let pos = positionalEmbedding.data, px = x.data
        for bi in 0..<b { for i in 0..<(n * inner) { px[bi * n * inner + i] += pos[i] } }

        // diffusers builds (1 - mask) * -10000 padded with zeros for the extra tokens, plus a causal -10000 triangle.
        var mask: Tensor?
        if let textMask {
            let m = Tensor(shape: [b, n, n], filledWith: 0)
            for bi in 0..<b {
                for q in 0..<n {
                    let row = m.data + (bi * n + q) * n
                    for k in 0..<n {
                        let pad: Float = k < textMask[bi].count ? (textMask[bi][k] ? 0 : -10000) : 0
                        row[k] = pad + (k > q ? -10000 : 0)
                    }
                }
            }
            mask = m
        }
        var h = x
        for blk in blocks { h = blk(h, mask: mask) }
        h = normOut(h)
        let last = slice(h, axis: 1, start: n - 1, length: 1).reshaped([b, inner])
        return projToClip(last)
    }

    /// post_process_latents: x * clip_std + clip_mean.
    public func postProcess(_ x: Tensor) -> Tensor {
        let out = Tensor(shape: x.shape)
        let d = x.dim(-1)
        for i in 0..<x.count { out.data[i] = x.data[i] * clipStd.data[i % d] + clipMean.data[i % d] }
        return out
    }
}
