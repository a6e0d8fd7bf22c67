// The beta schedules shared by the schedulers, computed in float32 as diffusers computes them with torch.
import Foundation

public enum BetaSchedule: String, Sendable {
    case linear
    case scaledLinear = "scaled_linear"
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

public struct NoiseSchedule: Sendable {
    public let betas: [Float]
    public let alphas: [Float]
    public let alphasCumprod: [Float]

    public init(schedule: BetaSchedule, trainSteps: Int, betaStart: Double, betaEnd: Double) {
        var betas: [Float]
        switch schedule {
        case .linear:
            betas = Self.linspace(Float(betaStart), Float(betaEnd), trainSteps)
        case .scaledLinear:
            betas = Self.linspace(Float(betaStart.squareRoot()), Float(betaEnd.squareRoot()), trainSteps).map { $0 * $0 }
        case .squaredcosCapV2:
            // betas_for_alpha_bar: computed in Python floats, then stored as float32.
            func alphaBar(_ t: Double) -> Double { let c = cos((t + 0.008) / 1.008 * Double.pi / 2); return c * c }
            betas = (0..<trainSteps).map { i in
                let t1 = Double(i) / Double(trainSteps), t2 = Double(i + 1) / Double(trainSteps)
                return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
            }
        }
        self.betas = betas
        alphas = betas.map { 1 - $0 }
        // torch.cumprod on CPU accumulates float32 input in double.
        var acc = 1.0
        alphasCumprod = alphas.map { acc *= Double($0); return Float(acc) }
    }

    /// torch.linspace(start, end, steps, dtype=float32): the first half counts up from start, the second down from end.
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        if steps == 1 { return [start] }
        let step = (end - start) / Float(steps - 1)
        let half = steps / 2
        return (0..<steps).map { i in i < half ? start + step * Float(i) : end - step * Float(steps - i - 1) }
    }

    /// DDPMScheduler/DDIMScheduler.add_noise: sqrt(a_t) x0 + sqrt(1 - a_t) noise.
    public func addNoiseCoefficients(_ t: Int) -> (Float, Float) {
        let a = alphasCumprod[t]
        return (a.squareRoot(), (1 - a).squareRoot())
    }
}

/// Inference timesteps for the three diffusers spacings.
public enum TimestepSpacing: String, Sendable {
    case leading, linspace, trailing

    public func timesteps(inference n: Int, train: Int, offset: Int) -> [Int] {
        switch self {
        case .leading:
            let ratio = train / n
            return (0..<n).reversed().map { $0 * ratio + offset }
        case .linspace:
            if n == 1 { return [0] }
            let step = Double(train - 1) / Double(n - 1)
            return (0..<n).reversed().map { Int((Double($0) * step).rounded(.toNearestOrEven)) }
        case .trailing:
            let step = Double(train) / Double(n)
            return (0..<n).map { Int((Double(train) - Double($0) * step).rounded(.toNearestOrEven)) - 1 }
        }
    }
}
