// diffusers pipelines/kandinsky2_2/pipeline_kandinsky2_2.py (text2img decoder): image embeddings -> latents by the
// UNet and the DDPM scheduler -> pixels by MoVQ. The denoising loop is shared by every decoder variant through
// `denoise`, which takes the extra input channels, a per-step hook and the run's own sampler state.
import Checkpoint
import Foundation
import Networks
import Schedulers
import TensorCore
import TorchRandom

public final class DecoderPipeline {
    public let unet: UNet2DConditionModel
    public let movq: VQModel
    /// The decoder's scheduler_config.json, from which every sampler is built as diffusers' from_config builds it.
    public let schedulerConfig: DecoderSchedulerConfig
    /// Every sampler, built once (immutable, shared by all runs), or why it cannot run this decoder.
    private let samplers: [SamplerKind: Result<Sampler, Error>]

    public init(unet: UNet2DConditionModel, movq: VQModel, schedulerConfig: DecoderSchedulerConfig) {
        self.unet = unet
        self.movq = movq
        self.schedulerConfig = schedulerConfig
        var built: [SamplerKind: Result<Sampler, Error>] = [:]
        for kind in SamplerKind.allCases { built[kind] = Result { try makeSampler(kind, config: schedulerConfig) } }
        samplers = built
    }

    /// Loads a kandinsky-2-2-decoder(-inpaint / -controlnet-depth) folder, its layers computing in `precision`.
    public convenience init(folder: String, precision: Precision = .fp32) throws {
        func sub(_ n: String) -> String { (folder as NSString).appendingPathComponent(n) }
        try self.init(
            unet: UNet2DConditionModel(folder: sub("unet"), precision: precision),
            movq: VQModel(folder: sub("movq"), precision: precision),
            schedulerConfig: DecoderSchedulerConfig(path: sub("scheduler/scheduler_config.json")))
    }

    /// The sampler of `kind`; nil = the one the model's scheduler config names.
    public func sampler(_ kind: SamplerKind? = nil) throws -> Sampler {
        try samplers[kind ?? schedulerConfig.ownKind]!.get()
    }

    public struct Conditioning {
        public var imageEmbeds: Tensor  // [N, D]: one row per image of the batch
        public var negativeImageEmbeds: Tensor  // [N, D]
        public var hint: Tensor?  // [1 or N, 3, H, W] for image_hint UNets; one row is shared by every image
        public init(imageEmbeds: Tensor, negativeImageEmbeds: Tensor, hint: Tensor? = nil) {
            self.imageEmbeds = imageEmbeds
            self.negativeImageEmbeds = negativeImageEmbeds
            self.hint = hint
        }
    }

    /// The decoder loop of every Kandinsky 2.2 decoder pipeline (diffusers pipelines/kandinsky2_2/
    /// pipeline_kandinsky2_2.py, `__call__`), over the timesteps of `run`, a fresh run of `sampler`.
    /// The batch is `start`'s first axis (N images, each with its row of the embeddings); under guidance the UNet
    /// sees 2N samples, every negative first, as diffusers lays out num_images_per_prompt.
    /// - extraChannels: appended after the (CFG-doubled) latents on the channel axis at each step (inpaint's
    ///   masked image and mask): [copies, E, h, w] shared by every image (copies = 2 under guidance: negative, then
    ///   positive), or [copies * N, E, h, w] in the UNet's batch order.
    /// - noise: the scheduler's random draws, one generator per image or one for the batch.
    /// - afterStep: called with (step index, latents) after each scheduler step; returns the latents to go on with.
    public func denoise(
        latents start: Tensor, sampler: Sampler, run: SamplerRun, conditioning c: Conditioning,
        guidance: Float, noise: BatchNoise, extraChannels: Tensor? = nil,
        afterStep: ((Int, Tensor) -> Tensor)? = nil,
        progress: ((Int, Int) -> Bool)? = nil
    ) throws -> Tensor {
        let cfg = guidance > 1
        let embeds = cfg ? concat([c.negativeImageEmbeds, c.imageEmbeds], axis: 0) : c.imageEmbeds
        let images = start.dim(0)
        let copies = cfg ? 2 : 1
        let hint = c.hint.map { shared in
            repeatedRows(shared, times: copies * (shared.dim(0) == 1 ? images : 1))
        }
        let extra = extraChannels.map { shared in
            shared.dim(0) == copies * images ? shared : repeatedEachRow(shared, times: images)
        }
        let channels = start.dim(1)
        let timesteps = run.timesteps
        var latents = start
        // Step 0 marks the start, so progress displays can time the stage from here.
        if let progress, !progress(0, timesteps.count) { throw CancellationError() }
        for (i, t) in timesteps.enumerated() {
            var input = cfg ? concat([latents, latents], axis: 0) : latents
            if let e = extra { input = concat([input, e], axis: 1) }
            // A run of one image gives the UNet `copies` samples; a batch's UNet takes them `copies` at a time in each
            // product and convolution, so each image rounds as in its run alone (TensorCore's SampleGroup).
            var out = SampleGroup.$size.withValue(copies) {
                unet(sample: input, timestep: Float(t), imageEmbeds: embeds, hint: hint)
            }
            if cfg {
                let eps = guided(slice(out, axis: 1, start: 0, length: channels), guidance)
                let variance = chunk(slice(out, axis: 1, start: channels, length: out.dim(1) - channels), 2, axis: 0)[1]
                out = concat([eps, variance], axis: 1)
            }
            if !sampler.usesLearnedVariance { out = slice(out, axis: 1, start: 0, length: channels) }
            latents = run.step(modelOutput: out, sample: latents, noise: noise)
            guard latents.allFinite else { throw NumericsError(stage: "decoder", step: i + 1, steps: timesteps.count) }
            if let afterStep { latents = afterStep(i, latents) }
            if let progress, !progress(i + 1, timesteps.count) { throw CancellationError() }
        }
        return latents
    }
}

extension DecoderPipeline {
    /// Feature-map floats per UNet sample at each level's resolution, times this factor, estimate the bytes a sample
    /// holds at once (the skip connections of every down block wait for the up path, each resnet holds its input,
    /// its output and a norm's copy). An upper estimate: measured growth of peak memory per image is below it
    /// (docs/performance.md, "Several images per run").
    static let activationMapsPerLevel = 24

    /// An estimate of the activation bytes one UNet sample takes at a latent size, from the UNet's config.
    public func activationBytesPerSample(latentHeight: Int, latentWidth: Int) -> Int {
        var floats = 0
        for (level, channels) in unet.config.blockOutChannels.enumerated() {
            let side = 1 << level
            floats += channels * ((latentHeight + side - 1) / side) * ((latentWidth + side - 1) / side)
        }
        return floats * MemoryLayout<Float>.size * Self.activationMapsPerLevel
    }

    /// How many of `wanted` images one denoise call may take when `availableBytes` are free: each image costs its
    /// UNet samples (two under guidance), and half the free memory is left for everything else. Never below 1: a
    /// single image runs whatever the estimate says, as it always has.
    public func batchLimit(latentHeight: Int, latentWidth: Int, guidance: Float, availableBytes: Int, wanted: Int)
        -> Int
    {
        let perImage = activationBytesPerSample(latentHeight: latentHeight, latentWidth: latentWidth)
            * (guidance > 1 ? 2 : 1)
        return max(1, min(wanted, availableBytes / 2 / max(perImage, 1)))
    }
}

/// `x` stacked `times` times on the batch axis: [B, ...] -> [times * B, ...].
func repeatedRows(_ x: Tensor, times: Int) -> Tensor {
    times == 1 ? x : concat(Array(repeating: x, count: times), axis: 0)
}

/// Each row of `x` repeated `times` times in place: rows (a, b) -> (a x times, b x times).
func repeatedEachRow(_ x: Tensor, times: Int) -> Tensor {
    guard times > 1 else { return x }
    let rows = (0..<x.dim(0)).map { slice(x, axis: 0, start: $0, length: 1) }
    return concat(rows.flatMap { Array(repeating: $0, count: times) }, axis: 0)
}

/// (x * 0.5 + 0.5).clamp(0, 1), diffusers' post-processing of MoVQ output.
public func toUnitRange(_ x: Tensor) -> Tensor {
    let out = Tensor(shape: x.shape)
    for i in 0..<x.count { out.data[i] = min(max(x.data[i] * 0.5 + 0.5, 0), 1) }
    return out
}
