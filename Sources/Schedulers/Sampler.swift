// What the decoder loop needs from a scheduler, split the way concurrent runs need it: a `Sampler` is the
// immutable rule built once per model (shared by every run), a `SamplerRun` is the state of one run (its step
// counter and, for the multistep samplers, the model outputs of earlier steps). diffusers keeps both in one object
// and resets it with set_timesteps; keeping them apart lets any number of runs share a loaded decoder.
import TensorCore
import TorchRandom

public protocol Sampler: AnyObject, Sendable {
    var kind: SamplerKind { get }
    var config: DecoderSchedulerConfig { get }
    /// set_timesteps(steps): the full schedule of a run of `steps` steps, first timestep first.
    func timesteps(steps: Int) -> [Int]
    /// add_noise(original, noise, t) as this scheduler computes it (img2img's start, inpainting's known region).
    func addNoise(_ original: Tensor, noise: Tensor, timestep: Int) -> Tensor
    /// A fresh run over `schedule` (from `timesteps(steps:)`), stepping from `schedule[beginIndex]` to its end.
    func makeRun(schedule: [Int], beginIndex: Int) -> SamplerRun
}

/// One run's sampler state. Not thread-safe: it belongs to the run that made it.
public protocol SamplerRun: AnyObject {
    /// The timesteps this run steps through, in order.
    var timesteps: ArraySlice<Int> { get }
    /// The step at the next of `timesteps`: the model's output for `sample` there -> the next sample.
    func step(modelOutput: Tensor, sample: Tensor, noise: BatchNoise) -> Tensor
}

extension Sampler {
    public var schedule: NoiseSchedule { config.schedule }

    /// Whether the UNet's variance channels are consumed rather than dropped (only DDPM with a learned variance).
    public var usesLearnedVariance: Bool { kind == .ddpm && config.learnsVariance }

    /// The run of `steps` steps cut to the last `strength` fraction: diffusers' Kandinsky img2img `get_timesteps`
    /// (strength 1 keeps the whole schedule, as text-to-image runs it). Empty when the cut leaves no step.
    public func run(steps: Int, strength: Double = 1) -> SamplerRun {
        let schedule = timesteps(steps: steps)
        let beginIndex = strengthBeginIndex(scheduleCount: schedule.count, strength: strength)
        return makeRun(schedule: schedule, beginIndex: beginIndex)
    }
}

/// Where get_timesteps enters a schedule of `scheduleCount` timesteps for `strength`: the index of the first of the
/// last `strength` fraction (equal to the count when the cut leaves no step).
public func strengthBeginIndex(scheduleCount: Int, strength: Double) -> Int {
    let kept = min(Int(Double(scheduleCount) * strength), scheduleCount)
    return max(scheduleCount - kept, 0)
}

/// The sampler `kind` as diffusers builds it from the decoder's scheduler config.
public func makeSampler(_ kind: SamplerKind, config: DecoderSchedulerConfig) throws -> Sampler {
    switch kind {
    case .ddpm: return DDPMSampler(config: config)
    case .ddim: return DDIMSampler(config: config)
    case .dpmSolverPlusPlus, .uniPC:
        // diffusers' DPMSolverMultistep takes model_output[:, :3] under a learned variance and UniPC ignores it, so
        // with such a config neither runs the Kandinsky decoders (the pipeline keeps all 8 channels).
        guard !config.learnsVariance else { throw SamplerError.learnedVariance(kind.rawValue) }
        return MultistepSampler(kind: kind, config: config)
    }
}

public enum SamplerError: Error, CustomStringConvertible {
    case learnedVariance(String)
    case unknown(String)

    public var description: String {
        switch self {
        case .learnedVariance(let name):
            return "scheduler \(name) cannot run a decoder whose scheduler config learns the variance"
        case .unknown(let name):
            return "unknown scheduler '\(name)' (choose one of \(SamplerKind.names.joined(separator: ", ")))"
        }
    }
}

/// Shared float32 x0 estimate from the prediction type, as DDPM/DDIM compute it.
@inline(__always)
func predictOriginal(_ type: PredictionType, out: Float, x: Float, sqrtA: Float, sqrtB: Float) -> Float {
    switch type {
    case .epsilon: return (x - sqrtB * out) / sqrtA
    case .sample: return out
    case .vPrediction: return sqrtA * x - sqrtB * out
    }
}
