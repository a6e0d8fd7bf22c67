// diffusers pipelines/kandinsky2_2/pipeline_kandinsky2_2_prior.py: prompt (+ negative prompt) -> CLIP image
// embeddings through the PriorTransformer, and the image side (CLIP image embeddings of pictures, the zero-image
// embedding used as the default negative).
import Checkpoint
import Foundation
import ImageProcessing
import Networks
import Schedulers
import TensorCore
import Tokenization
import TorchRandom

public final class PriorPipeline {
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModelWithProjection
    public let prior: PriorTransformer
    public let scheduler: UnCLIPScheduler
    public let imageEncoder: CLIPVisionModelWithProjection
    public let imageProcessor: CLIPImageProcessor

    public init(
        tokenizer: CLIPTokenizer, textEncoder: CLIPTextModelWithProjection, prior: PriorTransformer,
        scheduler: UnCLIPScheduler,
        imageEncoder: CLIPVisionModelWithProjection, imageProcessor: CLIPImageProcessor
    ) {
        self.tokenizer = tokenizer
        self.textEncoder = textEncoder
        self.prior = prior
        self.scheduler = scheduler
        self.imageEncoder = imageEncoder
        self.imageProcessor = imageProcessor
    }

    /// Loads a kandinsky-2-2-prior folder, its layers computing in `precision`.
    public convenience init(folder: String, precision: Precision = .fp32) throws {
        func sub(_ n: String) -> String { (folder as NSString).appendingPathComponent(n) }
        try self.init(
            tokenizer: CLIPTokenizer(folder: sub("tokenizer")),
            textEncoder: CLIPTextModelWithProjection(folder: sub("text_encoder"), precision: precision),
            prior: PriorTransformer(folder: sub("prior"), precision: precision),
            scheduler: UnCLIPScheduler(configPath: sub("scheduler/scheduler_config.json")),
            imageEncoder: CLIPVisionModelWithProjection(folder: sub("image_encoder"), precision: precision),
            imageProcessor: CLIPImageProcessor(configPath: sub("image_processor/preprocessor_config.json")))
    }

    struct TextConditioning {
        let embeds: Tensor  // [B, D] text_embeds
        let hidden: Tensor  // [B, 77, D]
        let mask: [[Bool]]
    }

    func encode(_ prompts: [String]) -> TextConditioning {
        let enc = prompts.map { tokenizer.encode($0) }
        let (embeds, hidden) = textEncoder(enc.map(\.ids))
        return TextConditioning(embeds: embeds, hidden: hidden, mask: enc.map { $0.mask.map { $0 == 1 } })
    }

    /// KandinskyV22PriorPipeline.__call__ for one prompt: returns (image_embeds [1, D], negative_image_embeds [1, D]).
    /// A non-nil negative prompt (even "") is run through the prior as an extra batch item, as diffusers does; with
    /// nil the negative is the zero-image embedding. Guidance is on when `guidance > 1`.
    public func callAsFunction(
        prompt: String, negativePrompt: String?, steps: Int, guidance: Float,
        generator: TorchGenerator, progress: ((Int, Int) -> Bool)? = nil
    ) throws -> (Tensor, Tensor) {
        var prompts = [prompt]
        var uncond = [""]
        if let n = negativePrompt {
            prompts.append(n)
            uncond = [n, n]
        }
        let batch = prompts.count
        let cfg = guidance > 1
        var cond = encode(prompts)
        if cfg {
            let u = encode(uncond)
            cond = TextConditioning(
                embeds: concat([u.embeds, cond.embeds], axis: 0), hidden: concat([u.hidden, cond.hidden], axis: 0),
                mask: u.mask + cond.mask)
        }
        let dim = prior.config.embeddingDim
        var latents = Tensor(shape: [batch, dim])
        generator.fillNormal(latents.data, latents.count)
        let ts = scheduler.timesteps(steps: steps)
        // Step 0 marks the start, so progress displays can time the stage from here.
        if let progress, !progress(0, ts.count) { throw CancellationError() }
        for (i, t) in ts.enumerated() {
            let input = cfg ? concat([latents, latents], axis: 0) : latents
            var pred = prior(
                hiddenStates: input, timestep: Float(t), projEmbedding: cond.embeds, encoderHiddenStates: cond.hidden,
                textMask: cond.mask)
            if cfg { pred = guided(pred, guidance) }
            latents = scheduler.step(
                modelOutput: pred, timestep: t, sample: latents, prevTimestep: i + 1 < ts.count ? ts[i + 1] : nil,
                generator: generator)
            guard latents.allFinite else { throw NumericsError(stage: "prior", step: i + 1, steps: ts.count) }
            if let progress, !progress(i + 1, ts.count) { throw CancellationError() }
        }
        let embeds = prior.postProcess(latents)
        if negativePrompt == nil { return (embeds, zeroImageEmbeds()) }
        return (slice(embeds, axis: 0, start: 0, length: 1), slice(embeds, axis: 0, start: 1, length: 1))
    }

    /// get_zero_embed: the image encoder's embedding of an all-zero (already normalised) image.
    public func zeroImageEmbeds() -> Tensor {
        let s = imageEncoder.config.imageSize
        return imageEncoder(Tensor(shape: [1, imageEncoder.config.channels, s, s], filledWith: 0))
    }

    /// CLIP image embedding of a picture (the image side of fusion and emb2emb).
    public func imageEmbeds(_ image: PixelImage) -> Tensor { imageEncoder(imageProcessor(image)) }
}

/// uncond + g * (cond - uncond) over the two halves of a CFG batch [2B, ...] -> [B, ...].
func guided(_ pred: Tensor, _ g: Float) -> Tensor {
    let halves = chunk(pred, 2, axis: 0)
    let u = halves[0]
    let c = halves[1]
    let out = Tensor(shape: u.shape)
    for i in 0..<out.count { out.data[i] = u.data[i] + g * (c.data[i] - u.data[i]) }
    return out
}
