// diffusers models/embeddings.py: sinusoidal timestep features, TimestepEmbedding, and the Kandinsky 2.2 image
// conditionings (ImageProjection, ImageTimeEmbedding, ImageHintTimeEmbedding).
import Checkpoint
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// get_timestep_embedding: [B] timesteps -> [B, dim], float32 in torch's operation order.
public func timestepFeatures(_ timesteps: [Float], dim: Int, flipSinToCos: Bool, shift: Float, maxPeriod: Double = 10000) -> Tensor {
    let half = dim / 2
    let logPeriod = Float(-log(maxPeriod))
    let freqs = (0..<half).map { expf(logPeriod * Float($0) / (Float(half) - shift)) }
    let out = Tensor(shape: [timesteps.count, dim], filledWith: 0)
    for (b, t) in timesteps.enumerated() {
        let row = out.data + b * dim
        for i in 0..<half {
            let arg = t * freqs[i]
            let (s, c) = (sinf(arg), cosf(arg))
            if flipSinToCos { row[i] = c; row[half + i] = s } else { row[i] = s; row[half + i] = c }
        }
    }
    return out
}

/// TimestepEmbedding: linear_1 -> act -> linear_2.
public struct TimestepEmbedding {
    let linear1: Linear, linear2: Linear
    let act: Activation

    public init(_ w: WeightScope, in inF: Int, dim: Int, act: Activation) throws {
        linear1 = try Linear(w.scope("linear_1"), in: inF, out: dim)
        linear2 = try Linear(w.scope("linear_2"), in: dim, out: dim)
        self.act = act
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = linear1(x)
        applyActivation(act, h)
        return linear2(h)
    }
}

/// ImageProjection (encoder_hid_proj): image embedding -> `tokens` cross-attention tokens, layer-normed.
public struct ImageProjection {
    let imageEmbeds: Linear
    let norm: LayerNorm
    let tokens: Int, crossDim: Int

    public init(_ w: WeightScope, imageEmbedDim: Int, crossDim: Int, tokens: Int = 32) throws {
        imageEmbeds = try Linear(w.scope("image_embeds"), in: imageEmbedDim, out: tokens * crossDim)
        norm = try LayerNorm(w.scope("norm"), dim: crossDim)
        self.tokens = tokens
        self.crossDim = crossDim
    }

    /// [B, imageEmbedDim] -> [B, tokens, crossDim]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        norm(imageEmbeds(x).reshaped([x.dim(0), tokens, crossDim]))
    }
}

/// ImageTimeEmbedding (addition_embed_type "image") and ImageHintTimeEmbedding ("image_hint", which adds the
/// depth-hint encoder `input_hint_block`).
public struct ImageTimeEmbedding {
    let imageProj: Linear
    let imageNorm: LayerNorm
    /// input_hint_block.{0,2,...,14}: the odd indices are SiLU layers without weights.
    let hintBlock: [Conv2d]?

    public init(_ w: WeightScope, imageEmbedDim: Int, timeEmbedDim: Int, withHint: Bool) throws {
        imageProj = try Linear(w.scope("image_proj"), in: imageEmbedDim, out: timeEmbedDim)
        imageNorm = try LayerNorm(w.scope("image_norm"), dim: timeEmbedDim)
        if withHint {
            let spec: [(Int, Int, Int)] = [(3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 96, 2), (96, 96, 1), (96, 256, 2), (256, 4, 1)]
            hintBlock = try spec.enumerated().map { i, s in
                try Conv2d(w.scope("input_hint_block", 2 * i), in: s.0, out: s.1, kernel: 3, stride: s.2, padding: .symmetric(1))
            }
        } else {
            hintBlock = nil
        }
    }

    public func embed(_ imageEmbeds: Tensor) -> Tensor { imageNorm(imageProj(imageEmbeds)) }

    /// [B, 3, H, W] hint in [0, 1] -> [B, 4, H/8, W/8].
    public func encodeHint(_ hint: Tensor) -> Tensor {
        guard let hintBlock else { fatalError("encodeHint on a UNet without image_hint") }
        var h = hint
        for (i, conv) in hintBlock.enumerated() {
            h = conv(h)
            if i < hintBlock.count - 1 { applyActivation(.silu, h) }
        }
        return h
    }
}
