// DDPMScheduler and DDIMScheduler (diffusers schedulers/scheduling_{ddpm,ddim}.py). Arithmetic follows diffusers'
// order of float32 operations so that each step matches torch to a few ulps.
import TensorCore
import TorchRandom

#if canImport(Glibc)
    import Glibc
#endif

/// What DDPM and DDIM share: set_timesteps over the training steps and add_noise in alphas_cumprod.
public class AlphaCumprodSampler {
    public let config: DecoderSchedulerConfig

    public init(config: DecoderSchedulerConfig) { self.config = config }

    func timesteps(_ kind: SamplerKind, steps: Int) -> [Int] {
        config.spacing(for: kind).timesteps(inference: steps, train: config.trainSteps, offset: config.stepsOffset)
    }

    /// add_noise: sqrt(a_t) x0 + sqrt(1 - a_t) noise.
    public func addNoise(_ original: Tensor, noise: Tensor, timestep: Int) -> Tensor {
        let (a, b) = config.schedule.addNoiseCoefficients(timestep)
        return affineCombination(original, a, noise, b)
    }
}

public final class DDPMSampler: AlphaCumprodSampler, Sampler, @unchecked Sendable {
    public var kind: SamplerKind { .ddpm }

    public func timesteps(steps: Int) -> [Int] { timesteps(kind, steps: steps) }

    public func makeRun(schedule: [Int], beginIndex: Int) -> SamplerRun {
        StepperRun(schedule: schedule, beginIndex: beginIndex) { [self] index, output, sample, noise in
            // The previous timestep is the next one of the run's schedule (-1 after the last).
            let previous = index + 1 < schedule.count ? schedule[index + 1] : -1
            return step(output, timestep: schedule[index], previous: previous, sample: sample, noise: noise)
        }
    }

    func step(_ modelOutput: Tensor, timestep t: Int, previous prevT: Int, sample: Tensor, noise source: BatchNoise)
        -> Tensor
    {
        let channels = sample.dim(1)
        var eps = modelOutput
        var predictedVariance: Tensor?
        if modelOutput.dim(1) == 2 * channels && usesLearnedVariance {
            eps = slice(modelOutput, axis: 1, start: 0, length: channels)
            predictedVariance = slice(modelOutput, axis: 1, start: channels, length: channels)
        }
        let schedule = config.schedule
        let aT = schedule.alphasCumprod[t]
        let aPrev: Float = prevT >= 0 ? schedule.alphasCumprod[prevT] : 1
        let bT = 1 - aT
        let bPrev = 1 - aPrev
        let curAlpha = aT / aPrev
        let curBeta = 1 - curAlpha
        let sqrtA = aT.squareRoot()
        let sqrtB = bT.squareRoot()
        let c0 = (aPrev.squareRoot() * curBeta) / bT
        let c1 = curAlpha.squareRoot() * bPrev / bT
        let out = Tensor(shape: sample.shape)
        let po = out.data
        let px = sample.data
        let pe = eps.data
        let clip = config.clipSample
        let range = config.clipRange
        let type = config.prediction
        parallelFor(out.count, minPerThread: 1 << 14) { r in
            for i in r {
                var x0 = predictOriginal(type, out: pe[i], x: px[i], sqrtA: sqrtA, sqrtB: sqrtB)
                if clip { x0 = min(max(x0, -range), range) }
                po[i] = c0 * x0 + c1 * px[i]
            }
        }
        guard t > 0 else { return out }
        let noise = Tensor(shape: sample.shape)
        source.fill(noise.data, count: noise.count, samples: sample.dim(0))
        let varSmall = max(bPrev / bT * curBeta, 1e-20)
        let pn = noise.data
        switch config.variance {
        case .learnedRange:
            let minLog = logf(varSmall)
            let maxLog = logf(curBeta)
            let pv = predictedVariance!.data
            for i in 0..<out.count {
                let frac = (pv[i] + 1) / 2
                let logVariance = frac * maxLog + (1 - frac) * minLog
                po[i] += expf(0.5 * logVariance) * pn[i]
            }
        case .learned where predictedVariance != nil:
            let pv = predictedVariance!.data
            for i in 0..<out.count { po[i] += pv[i].squareRoot() * pn[i] }
        case .fixedSmall, .fixedSmallLog, .fixedLarge, .learned:
            let std: Float
            switch config.variance {
            case .fixedSmall: std = varSmall.squareRoot()
            case .fixedSmallLog: std = expf(0.5 * logf(varSmall))
            case .fixedLarge: std = curBeta.squareRoot()
            default: std = 0
            }
            for i in 0..<out.count { po[i] += std * pn[i] }
        }
        return out
    }
}

public final class DDIMSampler: AlphaCumprodSampler, Sampler, @unchecked Sendable {
    public var kind: SamplerKind { .ddim }

    public func timesteps(steps: Int) -> [Int] { timesteps(kind, steps: steps) }

    public func makeRun(schedule: [Int], beginIndex: Int) -> SamplerRun {
        // DDIM steps back by train / num_inference_steps of the whole schedule, also in a run cut by strength.
        let stride = config.trainSteps / max(schedule.count, 1)
        return StepperRun(schedule: schedule, beginIndex: beginIndex) { [self] index, output, sample, _ in
            step(output, timestep: schedule[index], previous: schedule[index] - stride, sample: sample)
        }
    }

    /// eta = 0 (the Kandinsky pipelines never pass eta), so no noise is drawn.
    func step(_ modelOutput: Tensor, timestep t: Int, previous prevT: Int, sample: Tensor) -> Tensor {
        let schedule = config.schedule
        let aT = schedule.alphasCumprod[t]
        let aPrev = prevT >= 0 ? schedule.alphasCumprod[prevT] : config.finalAlphaCumprod
        let bT = 1 - aT
        let sqrtA = aT.squareRoot()
        let sqrtB = bT.squareRoot()
        let dirCoeff = (1 - aPrev).squareRoot()
        let sqrtAPrev = aPrev.squareRoot()  // eta = 0: no std_dev_t term
        let out = Tensor(shape: sample.shape)
        let po = out.data
        let px = sample.data
        let pe = modelOutput.data
        let clip = config.clipSample
        let range = config.clipRange
        let type = config.prediction
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

/// A run of a sampler without history: a step counter over the schedule and the step rule.
final class StepperRun: SamplerRun {
    let schedule: [Int]
    let timesteps: ArraySlice<Int>
    private var index: Int
    private let rule: (Int, Tensor, Tensor, BatchNoise) -> Tensor

    init(schedule: [Int], beginIndex: Int, rule: @escaping (Int, Tensor, Tensor, BatchNoise) -> Tensor) {
        self.schedule = schedule
        timesteps = schedule[min(beginIndex, schedule.count)...]
        index = beginIndex
        self.rule = rule
    }

    func step(modelOutput: Tensor, sample: Tensor, noise: BatchNoise) -> Tensor {
        precondition(index < schedule.count, "step past the end of the schedule")
        let out = rule(index, modelOutput, sample, noise)
        index += 1
        return out
    }
}
