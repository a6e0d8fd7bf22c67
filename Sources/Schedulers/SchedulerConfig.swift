// The decoder's scheduler_config.json, read once into the settings every sampler is built from. diffusers swaps a
// pipeline's scheduler with `NewScheduler.from_config(pipe.scheduler.config)`: the new class takes the keys it
// knows from the old config and ignores the rest; a key the config FILE lacked (diffusers records it in
// `_use_default_values`) is not carried over, so the new class takes its own default. That matters for the
// published decoders, whose scheduler_config.json has no timestep_spacing: DDPM and DDIM default to "leading",
// DPM-Solver++ and UniPC to "linspace". This reader does the same, so every sampler sees the numbers diffusers
// would give it.
import Checkpoint
import Foundation
import TensorCore

public enum PredictionType: String, Sendable {
    case epsilon, sample
    case vPrediction = "v_prediction"
}
public enum VarianceType: String, Sendable {
    case fixedSmall = "fixed_small"
    case fixedSmallLog = "fixed_small_log"
    case fixedLarge = "fixed_large"
    case learned
    case learnedRange = "learned_range"
}

/// The samplers a decoder can run with (the `scheduler` parameter of the generating plugins).
public enum SamplerKind: String, CaseIterable, Sendable {
    /// DDPMScheduler: the shipped Kandinsky 2.2 decoders' own scheduler.
    case ddpm
    /// DDIMScheduler with eta 0 (the Kandinsky pipelines never pass eta).
    case ddim
    /// DPMSolverMultistepScheduler at its defaults: 2nd order, dpmsolver++, midpoint, lower_order_final.
    case dpmSolverPlusPlus = "dpmsolver++"
    /// UniPCMultistepScheduler at its defaults: 2nd order, bh2, predict_x0.
    case uniPC = "unipc"

    /// The names users type, in the order `--help` lists them.
    public static var names: [String] { allCases.map(\.rawValue) }
}

/// Everything the decoder samplers read from scheduler_config.json, under diffusers' keys and defaults.
public struct DecoderSchedulerConfig: Sendable {
    /// The sampler the config itself names (`_class_name`).
    public let ownKind: SamplerKind
    public let schedule: NoiseSchedule
    public let trainSteps: Int
    public let stepsOffset: Int
    /// timestep_spacing as the file states it; nil = each sampler's own default.
    public let spacingInFile: TimestepSpacing?
    public let prediction: PredictionType
    public let clipSample: Bool
    public let clipRange: Float
    /// DDPM's variance setting (DDIM has none and uses fixed_small's default).
    public let variance: VarianceType
    /// DDIM's alpha of the step after the last: 1, or alphas_cumprod[0] when set_alpha_to_one is false.
    public let finalAlphaCumprod: Float

    public init(path: String) throws {
        let c = try ConfigReader(path: path)
        let className = c.values["_class_name"] as? String ?? ""
        switch className {
        case "DDPMScheduler": ownKind = .ddpm
        case "DDIMScheduler": ownKind = .ddim
        default: throw CheckpointError.unsupportedConfig(path: path, key: "_class_name", value: className)
        }
        trainSteps = try c.int("num_train_timesteps", default: 1000, in: 1...1_000_000)
        schedule = NoiseSchedule(
            schedule: try c.choice("beta_schedule", default: "linear"), trainSteps: trainSteps,
            betaStart: try c.double("beta_start", default: 0.0001, in: 0...1),
            betaEnd: try c.double("beta_end", default: 0.02, in: 0...1))
        stepsOffset = try c.int("steps_offset", default: 0, in: 0...1_000_000)
        let spacingGiven = c.values["timestep_spacing"].map { !($0 is NSNull) } ?? false
        spacingInFile = spacingGiven ? try c.choice("timestep_spacing", default: "leading") : nil
        prediction = try c.choice("prediction_type", default: "epsilon")
        clipSample = try c.bool("clip_sample", default: true)
        clipRange = Float(try c.double("clip_sample_range", default: 1))
        variance = try c.choice("variance_type", default: "fixed_small")
        let alphaToOne = try c.bool("set_alpha_to_one", default: true)
        finalAlphaCumprod = alphaToOne ? 1 : schedule.alphasCumprod[0]
        // Accepted only at their defaults: Kandinsky 2.2 uses none of them.
        try c.require("thresholding", in: [false])
        try c.require("trained_betas", in: [])
        try c.require("rescale_betas_zero_snr", in: [false])
        // Thresholding's parameters (thresholding is off) and PNDM's option.
        c.ignore(["dynamic_thresholding_ratio", "sample_max_value", "skip_prk_steps"])
        try c.finish()
    }

    /// The spacing `kind` runs with: the file's, or that scheduler class's default.
    public func spacing(for kind: SamplerKind) -> TimestepSpacing {
        if let spacingInFile { return spacingInFile }
        switch kind {
        case .ddpm, .ddim: return .leading
        case .dpmSolverPlusPlus, .uniPC: return .linspace
        }
    }

    /// Whether the UNet's variance channels are consumed (DDPM with `learned`, `learned_range`) rather than dropped.
    var learnsVariance: Bool { variance == .learned || variance == .learnedRange }
}
