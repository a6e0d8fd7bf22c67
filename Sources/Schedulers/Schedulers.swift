// DDPMScheduler, DDIMScheduler and UnCLIPScheduler (diffusers schedulers/scheduling_{ddpm,ddim,unclip}.py).
// Arithmetic follows diffusers' order of float32 operations so that each step matches torch to a few ulps.
import Checkpoint
import TensorCore
import TorchRandom
#if canImport(Glibc)
import Glibc
#endif

public enum PredictionType: String, Sendable { case epsilon, sample, vPrediction = "v_prediction" }
public enum VarianceType: String, Sendable {
    case fixedSmall = "fixed_small", fixedSmallLog = "fixed_small_log", fixedLarge = "fixed_large"
    case learned, learnedRange = "learned_range"
}

/// What the decoder loop needs from a scheduler.
public protocol DenoisingScheduler: AnyObject {
    var timesteps: [Int] { get }
    var schedule: NoiseSchedule { get }
    func setTimesteps(_ n: Int)
    /// Whether the UNet's variance channels are consumed (`learned`, `learned_range`) rather than dropped.
    var usesLearnedVariance: Bool { get }
    func step(modelOutput: Tensor, timestep: Int, sample: Tensor, generator: TorchGenerator) -> Tensor
}

extension DenoisingScheduler {
    /// add_noise(original, noise, t).
    public func addNoise(_ original: Tensor, noise: Tensor, timestep: Int) -> Tensor {
        let (a, b) = schedule.addNoiseCoefficients(timestep)
        return affineCombination(original, a, noise, b)
    }
}

/// Loads scheduler_config.json into the scheduler its `_class_name` names.
public func loadScheduler(configPath: String) throws -> DenoisingScheduler {
    let cfg = try ConfigReader(path: configPath)
    let cls = cfg.values["_class_name"] as? String ?? ""
    switch cls {
    case "DDPMScheduler": return try DDPMScheduler(config: cfg)
    case "DDIMScheduler": return try DDIMScheduler(config: cfg)
    default: throw CheckpointError.unsupportedConfig(path: configPath, key: "_class_name", value: cls)
    }
}

/// Shared float32 posterior mean: coeff0 * x0 + coeff1 * x_t with x0 from the prediction type.
@inline(__always)
func predictOriginal(_ type: PredictionType, out: Float, x: Float, sqrtA: Float, sqrtB: Float) -> Float {
    switch type {
    case .epsilon: return (x - sqrtB * out) / sqrtA
    case .sample: return out
    case .vPrediction: return sqrtA * x - sqrtB * out
    }
}

/// The settings DDPMScheduler and DDIMScheduler share, under the same config keys and defaults.
public struct ScheduleSettings: Sendable {
    public let schedule: NoiseSchedule
    public let trainSteps: Int
    public let stepsOffset: Int
    public let spacing: TimestepSpacing
    public let prediction: PredictionType
    public let clipSample: Bool
    public let clipRange: Float

    init(_ c: ConfigReader) throws {
        trainSteps = try c.int("num_train_timesteps", default: 1000)
        schedule = NoiseSchedule(schedule: try c.choice("beta_schedule", default: "linear"), trainSteps: trainSteps,
                                 betaStart: try c.double("beta_start", default: 0.0001), betaEnd: try c.double("beta_end", default: 0.02))
        stepsOffset = try c.int("steps_offset", default: 0)
        spacing = try c.choice("timestep_spacing", default: "leading")
        prediction = try c.choice("prediction_type", default: "epsilon")
        clipSample = try c.bool("clip_sample", default: true)
        clipRange = Float(try c.double("clip_sample_range", default: 1))
        // Accepted only at their defaults: Kandinsky 2.2 uses none of them.
        try c.require("thresholding", in: [false])
        try c.require("trained_betas", in: [])
        try c.require("rescale_betas_zero_snr", in: [false])
        // Thresholding parameters (thresholding is off).
        c.ignore(["dynamic_thresholding_ratio", "sample_max_value"])
    }

    func timesteps(_ n: Int) -> [Int] { spacing.timesteps(inference: n, train: trainSteps, offset: stepsOffset) }
}

public final class DDPMScheduler: DenoisingScheduler {
    public let settings: ScheduleSettings
    public let variance: VarianceType
    public var schedule: NoiseSchedule { settings.schedule }
    public private(set) var timesteps: [Int] = []

    init(config c: ConfigReader) throws {
        settings = try ScheduleSettings(c)
        variance = try c.choice("variance_type", default: "fixed_small")
        // Used by DDIM / PNDM only.
        c.ignore(["set_alpha_to_one", "skip_prk_steps"])
        try c.finish()
    }

    public var usesLearnedVariance: Bool { variance == .learned || variance == .learnedRange }

    public func setTimesteps(_ n: Int) { timesteps = settings.timesteps(n) }

    func previous(_ t: Int) -> Int {
        guard let i = timesteps.firstIndex(of: t) else { return t - settings.trainSteps / max(timesteps.count, 1) }
        return i + 1 < timesteps.count ? timesteps[i + 1] : -1
    }

    public func step(modelOutput: Tensor, timestep t: Int, sample: Tensor, generator: TorchGenerator) -> Tensor {
        let c = sample.dim(1)
        var eps = modelOutput
        var predictedVariance: Tensor?
        if modelOutput.dim(1) == 2 * c && usesLearnedVariance {
            eps = slice(modelOutput, axis: 1, start: 0, length: c)
            predictedVariance = slice(modelOutput, axis: 1, start: c, length: c)
        }
        let prevT = previous(t)
        let aT = schedule.alphasCumprod[t]
        let aPrev: Float = prevT >= 0 ? schedule.alphasCumprod[prevT] : 1
        let bT = 1 - aT, bPrev = 1 - aPrev
        let curAlpha = aT / aPrev, curBeta = 1 - curAlpha
        let sqrtA = aT.squareRoot(), sqrtB = bT.squareRoot()
        let c0 = (aPrev.squareRoot() * curBeta) / bT
        let c1 = curAlpha.squareRoot() * bPrev / bT
        let out = Tensor(shape: sample.shape)
        let po = out.data, px = sample.data, pe = eps.data
        let clip = settings.clipSample, range = settings.clipRange, type = settings.prediction
        parallelFor(out.count, minPerThread: 1 << 14) { r in
            for i in r {
                var x0 = predictOriginal(type, out: pe[i], x: px[i], sqrtA: sqrtA, sqrtB: sqrtB)
                if clip { x0 = min(max(x0, -range), range) }
                po[i] = c0 * x0 + c1 * px[i]
            }
        }
        if t > 0 {
            let noise = Tensor(shape: sample.shape)
            generator.fillNormal(noise.data, noise.count)
            let varSmall = max(bPrev / bT * curBeta, 1e-20)
            let pn = noise.data
            switch variance {
            case .fixedSmall, .fixedSmallLog, .fixedLarge, .learned:
                let std: Float
                switch variance {
                case .fixedSmall: std = varSmall.squareRoot()
                case .fixedSmallLog: std = expf(0.5 * logf(varSmall))
                case .fixedLarge: std = curBeta.squareRoot()
                default: std = 0
                }
                if variance == .learned, let pv = predictedVariance?.data {
                    for i in 0..<out.count { po[i] += pv[i].squareRoot() * pn[i] }
                } else {
                    for i in 0..<out.count { po[i] += std * pn[i] }
                }
            case .learnedRange:
                let minLog = logf(varSmall), maxLog = logf(curBeta)
                let pv = predictedVariance!.data
                for i in 0..<out.count {
                    let frac = (pv[i] + 1) / 2
                    let logv = frac * maxLog + (1 - frac) * minLog
                    po[i] += expf(0.5 * logv) * pn[i]
                }
            }
        }
        return out
    }
}

public final class DDIMScheduler: DenoisingScheduler {
    public let settings: ScheduleSettings
    public let finalAlphaCumprod: Float
    public var schedule: NoiseSchedule { settings.schedule }
    public private(set) var timesteps: [Int] = []

    init(config c: ConfigReader) throws {
        settings = try ScheduleSettings(c)
        finalAlphaCumprod = try c.bool("set_alpha_to_one", default: true) ? 1 : settings.schedule.alphasCumprod[0]
        // DDPM's variance setting; DDIM with eta = 0 has none.
        c.ignore(["variance_type"])
        try c.finish()
    }

    public var usesLearnedVariance: Bool { false }

    public func setTimesteps(_ n: Int) { timesteps = settings.timesteps(n) }

    /// eta = 0 (the Kandinsky pipelines never pass eta), so no noise is drawn.
    public func step(modelOutput: Tensor, timestep t: Int, sample: Tensor, generator: TorchGenerator) -> Tensor {
        let prevT = t - settings.trainSteps / max(timesteps.count, 1)
        let aT = schedule.alphasCumprod[t]
        let aPrev = prevT >= 0 ? schedule.alphasCumprod[prevT] : finalAlphaCumprod
        let bT = 1 - aT
        let sqrtA = aT.squareRoot(), sqrtB = bT.squareRoot()
        let dirCoeff = (1 - aPrev).squareRoot(), sqrtAPrev = aPrev.squareRoot()  // eta = 0: no std_dev_t term
        let out = Tensor(shape: sample.shape)
        let po = out.data, px = sample.data, pe = modelOutput.data
        let clip = settings.clipSample, range = settings.clipRange, type = settings.prediction
        parallelFor(out.count, minPerThread: 1 << 14) { r in
            for i in r {
                var x0 = predictOriginal(type, out: pe[i], x: px[i], sqrtA: sqrtA, sqrtB: sqrtB)
                let epsPred: Float
                switch type {
                case .epsilon: epsPred = pe[i]
                case .sample: epsPred = (px[i] - sqrtA * x0) / sqrtB
                case .vPrediction: epsPred = sqrtA * pe[i] + sqrtB * px[i]
                }
                if clip { x0 = min(max(x0, -range), range) }
                po[i] = sqrtAPrev * x0 + dirCoeff * epsPred
            }
        }
        return out
    }
}

/// The prior's scheduler. Its step takes the previous timestep explicitly, as the prior pipeline passes it.
public final class UnCLIPScheduler {
    public let schedule: NoiseSchedule
    public let trainSteps: Int
    public let variance: VarianceType
    public let clipSample: Bool
    public let clipRange: Float
    public let prediction: PredictionType
    public private(set) var timesteps: [Int] = []

    public init(trainSteps: Int = 1000, variance: VarianceType = .fixedSmallLog, clipSample: Bool = true,
                clipRange: Double = 1, prediction: PredictionType = .epsilon) {
        self.trainSteps = trainSteps
        schedule = NoiseSchedule(schedule: .squaredcosCapV2, trainSteps: trainSteps, betaStart: 0, betaEnd: 0)
        self.variance = variance
        self.clipSample = clipSample
        self.clipRange = Float(clipRange)
        self.prediction = prediction
    }

    public convenience init(configPath: String) throws {
        let c = try ConfigReader(path: configPath)
        let cls = c.values["_class_name"] as? String ?? ""
        guard cls == "UnCLIPScheduler" else { throw CheckpointError.unsupportedConfig(path: configPath, key: "_class_name", value: cls) }
        let v = try c.string("variance_type", default: "fixed_small_log")!
        guard let vt = VarianceType(rawValue: v), vt == .fixedSmallLog else {
            throw CheckpointError.unsupportedConfig(path: configPath, key: "variance_type", value: v)
        }
        let p = try c.string("prediction_type", default: "epsilon")!
        guard let pt = PredictionType(rawValue: p), pt != .vPrediction else {
            throw CheckpointError.unsupportedConfig(path: configPath, key: "prediction_type", value: p)
        }
        try c.require("beta_schedule", in: ["squaredcos_cap_v2"])
        self.init(trainSteps: try c.int("num_train_timesteps", default: 1000), variance: vt,
                  clipSample: try c.bool("clip_sample", default: true), clipRange: try c.double("clip_sample_range", default: 1),
                  prediction: pt)
        try c.finish()
    }

    public func setTimesteps(_ n: Int) {
        precondition(n >= 2, "UnCLIPScheduler needs at least 2 steps")
        let ratio = Double(trainSteps - 1) / Double(n - 1)
        timesteps = (0..<n).reversed().map { Int((Double($0) * ratio).rounded(.toNearestOrEven)) }
    }

    public func step(modelOutput: Tensor, timestep t: Int, sample: Tensor, prevTimestep: Int?, generator: TorchGenerator) -> Tensor {
        let prev = prevTimestep ?? t - 1
        let aT = schedule.alphasCumprod[t]
        let aPrev: Float = prev >= 0 ? schedule.alphasCumprod[prev] : 1
        let bT = 1 - aT, bPrev = 1 - aPrev
        let beta: Float, alpha: Float
        if prev == t - 1 { beta = schedule.betas[t]; alpha = schedule.alphas[t] } else { beta = 1 - aT / aPrev; alpha = 1 - beta }
        let sqrtA = aT.squareRoot(), sqrtB = bT.squareRoot()
        let c0 = (aPrev.squareRoot() * beta) / bT
        let c1 = alpha.squareRoot() * bPrev / bT
        let out = Tensor(shape: sample.shape)
        let po = out.data, px = sample.data, pe = modelOutput.data
        let type = prediction
        for i in 0..<out.count {
            var x0 = predictOriginal(type, out: pe[i], x: px[i], sqrtA: sqrtA, sqrtB: sqrtB)
            if clipSample { x0 = min(max(x0, -clipRange), clipRange) }
            po[i] = c0 * x0 + c1 * px[i]
        }
        if t > 0 {
            let noise = Tensor(shape: sample.shape)
            generator.fillNormal(noise.data, noise.count)
            let v = bPrev / bT * beta
            let std = expf(0.5 * logf(max(v, 1e-20)))
            for i in 0..<out.count { po[i] += std * noise.data[i] }
        }
        return out
    }

    /// add_noise (used by the prior's emb2emb form).
    public func addNoise(_ original: Tensor, noise: Tensor, timestep: Int) -> Tensor {
        let (a, b) = schedule.addNoiseCoefficients(timestep)
        return affineCombination(original, a, noise, b)
    }
}
