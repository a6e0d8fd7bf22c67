// UnCLIPScheduler (diffusers schedulers/scheduling_unclip.py): the prior's scheduler. Its step takes the previous
// timestep explicitly, as the prior pipeline passes it, so it holds no per-run state.
import Checkpoint
import TensorCore
import TorchRandom

#if canImport(Glibc)
    import Glibc
#endif

public final class UnCLIPScheduler: Sendable {
    public let schedule: NoiseSchedule
    public let trainSteps: Int
    public let variance: VarianceType
    public let clipSample: Bool
    public let clipRange: Float
    public let prediction: PredictionType

    public init(
        trainSteps: Int = 1000, variance: VarianceType = .fixedSmallLog, clipSample: Bool = true,
        clipRange: Double = 1, prediction: PredictionType = .epsilon
    ) {
        self.trainSteps = trainSteps
        schedule = NoiseSchedule(schedule: .squaredcosCapV2, trainSteps: trainSteps, betaStart: 0, betaEnd: 0)
        self.variance = variance
        self.clipSample = clipSample
        self.clipRange = Float(clipRange)
        self.prediction = prediction
    }

    public convenience init(configPath: String) throws {
        let c = try ConfigReader(path: configPath)
        let className = c.values["_class_name"] as? String ?? ""
        guard className == "UnCLIPScheduler" else {
            throw CheckpointError.unsupportedConfig(path: configPath, key: "_class_name", value: className)
        }
        let varianceName = try c.string("variance_type", default: "fixed_small_log")!
        guard let varianceType = VarianceType(rawValue: varianceName), varianceType == .fixedSmallLog else {
            throw CheckpointError.unsupportedConfig(path: configPath, key: "variance_type", value: varianceName)
        }
        let predictionName = try c.string("prediction_type", default: "epsilon")!
        guard let predictionType = PredictionType(rawValue: predictionName), predictionType != .vPrediction else {
            throw CheckpointError.unsupportedConfig(path: configPath, key: "prediction_type", value: predictionName)
        }
        try c.require("beta_schedule", in: ["squaredcos_cap_v2"])
        self.init(
            trainSteps: try c.int("num_train_timesteps", default: 1000, in: 1...1_000_000), variance: varianceType,
            clipSample: try c.bool("clip_sample", default: true),
            clipRange: try c.double("clip_sample_range", default: 1), prediction: predictionType)
        try c.finish()
    }

    /// set_timesteps(n): n timesteps spread evenly from trainSteps - 1 down to 0.
    public func timesteps(steps n: Int) -> [Int] {
        precondition(n >= 2, "UnCLIPScheduler needs at least 2 steps")
        let ratio = Double(trainSteps - 1) / Double(n - 1)
        return (0..<n).reversed().map { Int((Double($0) * ratio).rounded(.toNearestOrEven)) }
    }

    public func step(
        modelOutput: Tensor, timestep t: Int, sample: Tensor, prevTimestep: Int?,
        generator: TorchGenerator
    ) -> Tensor {
        let prev = prevTimestep ?? t - 1
        let aT = schedule.alphasCumprod[t]
        let aPrev: Float = prev >= 0 ? schedule.alphasCumprod[prev] : 1
        let bT = 1 - aT
        let bPrev = 1 - aPrev
        let beta: Float
        let alpha: Float
        if prev == t - 1 {
            beta = schedule.betas[t]
            alpha = schedule.alphas[t]
        } else {
            beta = 1 - aT / aPrev
            alpha = 1 - beta
        }
        let sqrtA = aT.squareRoot()
        let sqrtB = bT.squareRoot()
        let c0 = (aPrev.squareRoot() * beta) / bT
        let c1 = alpha.squareRoot() * bPrev / bT
        let out = Tensor(shape: sample.shape)
        let po = out.data
        let px = sample.data
        let pe = modelOutput.data
        for i in 0..<out.count {
            var x0 = predictOriginal(prediction, out: pe[i], x: px[i], sqrtA: sqrtA, sqrtB: sqrtB)
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
