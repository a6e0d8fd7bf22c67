// DPMSolverMultistepScheduler (dpmsolver++, 2nd order, midpoint) and UniPCMultistepScheduler (bh2, 2nd order,
// predict_x0), diffusers schedulers/scheduling_{dpmsolver,unipc}_multistep.py, at the defaults diffusers gives them
// when built from a Kandinsky decoder's DDPM config. Both work in sigma space (sigma = sqrt((1 - a) / a)) and keep
// the converted model outputs of earlier steps; that history lives in the run. Scalars are float32 as torch's
// 0-dim tensors compute them; element-wise expressions keep torch's order of operations.
import TensorCore
import TorchRandom

#if canImport(Glibc)
    import Glibc
#endif

public final class MultistepSampler: Sampler {
    public let kind: SamplerKind
    public let config: DecoderSchedulerConfig
    /// sigma_t of every training timestep, float32 as ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5.
    let trainSigmas: [Float]

    init(kind: SamplerKind, config: DecoderSchedulerConfig) {
        self.kind = kind
        self.config = config
        trainSigmas = config.schedule.alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// Both schedulers' set_timesteps: every spacing divides num_inference_steps + 1 intervals and drops the last.
    public func timesteps(steps: Int) -> [Int] {
        let train = config.trainSteps
        switch config.spacing(for: kind) {
        case .linspace:
            let step = Double(train - 1) / Double(steps)
            return (1...steps).reversed().map { Int((Double($0) * step).rounded(.toNearestOrEven)) }
        case .leading:
            let ratio = train / (steps + 1)
            return (1...steps).reversed().map { $0 * ratio + config.stepsOffset }
        case .trailing:
            // np.arange(train, 0, -ratio): ceil(train / ratio) values train - k * ratio.
            let ratio = Double(train) / Double(steps)
            let count = Int((Double(train) / ratio).rounded(.up))
            return (0..<count).map { Int((Double(train) - Double($0) * ratio).rounded(.toNearestOrEven)) - 1 }
        }
    }

    /// sigma at timestep t: np.interp over the training sigmas, which holds the end value past the end.
    func sigma(_ t: Int) -> Float { trainSigmas[min(max(t, 0), trainSigmas.count - 1)] }

    public func addNoise(_ original: Tensor, noise: Tensor, timestep: Int) -> Tensor {
        let point = SigmaPoint(sigma(timestep))
        return affineCombination(original, point.alpha, noise, point.sigma)
    }

    public func makeRun(schedule: [Int], beginIndex: Int) -> SamplerRun {
        // final_sigmas_type "zero": the step after the last lands on sigma 0, the clean sample.
        let sigmas = schedule.map(sigma) + [0]
        switch kind {
        case .uniPC: return UniPCRun(config: config, schedule: schedule, sigmas: sigmas, beginIndex: beginIndex)
        default: return DPMSolverRun(config: config, schedule: schedule, sigmas: sigmas, beginIndex: beginIndex)
        }
    }
}

/// alpha_t, sigma_t and lambda_t = log(alpha_t) - log(sigma_t) of one sigma (_sigma_to_alpha_sigma_t).
struct SigmaPoint {
    let alpha: Float, sigma: Float, lambda: Float
    init(_ s: Float) {
        alpha = 1 / (s * s + 1).squareRoot()
        sigma = s * alpha
        lambda = logf(alpha) - logf(sigma)
    }
}

/// convert_model_output with x0 prediction: the model's output at `point` -> the estimate of the clean sample.
func predictedClean(_ output: Tensor, sample: Tensor, at point: SigmaPoint, _ type: PredictionType) -> Tensor {
    let out = Tensor(shape: sample.shape)
    let po = out.data
    let px = sample.data
    let pm = output.data
    let alpha = point.alpha
    let sigma = point.sigma
    switch type {
    case .epsilon: for i in 0..<out.count { po[i] = (px[i] - sigma * pm[i]) / alpha }
    case .sample: po.update(from: pm, count: out.count)
    case .vPrediction: for i in 0..<out.count { po[i] = alpha * px[i] - sigma * pm[i] }
    }
    return out
}

/// Common state of the two multistep runs.
class MultistepRun {
    let config: DecoderSchedulerConfig
    let schedule: [Int]
    let sigmas: [Float]
    let timesteps: ArraySlice<Int>
    var index: Int
    /// Converted model outputs of the last two steps, newest last (model_outputs).
    var history: [Tensor] = []
    /// Steps taken so far, capped at the solver order (lower_order_nums).
    var lowerOrderCount = 0

    init(config: DecoderSchedulerConfig, schedule: [Int], sigmas: [Float], beginIndex: Int) {
        self.config = config
        self.schedule = schedule
        self.sigmas = sigmas
        timesteps = schedule[min(beginIndex, schedule.count)...]
        index = beginIndex
    }

    func point(_ i: Int) -> SigmaPoint { SigmaPoint(sigmas[i]) }

    func remember(_ converted: Tensor) {
        history.append(converted)
        if history.count > 2 { history.removeFirst() }
    }

    func advance() {
        if lowerOrderCount < 2 { lowerOrderCount += 1 }
        index += 1
    }
}

final class DPMSolverRun: MultistepRun, SamplerRun {
    func step(modelOutput: Tensor, sample: Tensor, noise: BatchNoise) -> Tensor {
        precondition(index < schedule.count, "step past the end of the schedule")
        let s0 = point(index)
        let t = point(index + 1)
        remember(predictedClean(modelOutput, sample: sample, at: s0, config.prediction))
        // final_sigmas_type "zero" makes the last step first order (lower_order_final).
        let firstOrder = lowerOrderCount < 1 || index == schedule.count - 1
        let h = t.lambda - s0.lambda
        let sampleCoeff = t.sigma / s0.sigma
        let outputCoeff = t.alpha * (expf(-h) - 1)
        let out = Tensor(shape: sample.shape)
        let po = out.data
        let px = sample.data
        let m0 = history[history.count - 1].data
        if firstOrder {
            for i in 0..<out.count { po[i] = sampleCoeff * px[i] - outputCoeff * m0[i] }
        } else {
            // multistep_dpm_solver_second_order_update, midpoint: D1 = (m0 - m1) / r0.
            let s1 = point(index - 1)
            let r0 = (s0.lambda - s1.lambda) / h
            let inverseR0 = 1 / r0
            let halfCoeff = 0.5 * outputCoeff
            let m1 = history[history.count - 2].data
            for i in 0..<out.count {
                let d1 = inverseR0 * (m0[i] - m1[i])
                po[i] = sampleCoeff * px[i] - outputCoeff * m0[i] - halfCoeff * d1
            }
        }
        advance()
        return out
    }
}

final class UniPCRun: MultistepRun, SamplerRun {
    /// The sample the last predictor started from (last_sample) and that step's order (this_order).
    private var lastSample: Tensor?
    private var lastOrder = 1

    /// The bh2 coefficients of an update from sigma index `from` to `to`: h, h_phi_1 and B_h (hh = -h).
    struct Update {
        let start: SigmaPoint, end: SigmaPoint
        let h: Float, hPhi1: Float, bh: Float
        init(_ start: SigmaPoint, _ end: SigmaPoint) {
            self.start = start
            self.end = end
            h = end.lambda - start.lambda
            hPhi1 = expm1f(-h)
            bh = expm1f(-h)
        }
        /// b of the order-2 system: h_phi_k / B_h for k = 1, 2 with the factorials of diffusers' loop.
        var b: (Float, Float) {
            let hh = -h
            var hPhiK = hPhi1 / hh - 1
            let b1 = hPhiK * 1 / bh
            hPhiK = hPhiK / hh - 0.5
            return (b1, hPhiK * 2 / bh)
        }
    }

    func step(modelOutput: Tensor, sample: Tensor, noise: BatchNoise) -> Tensor {
        precondition(index < schedule.count, "step past the end of the schedule")
        let converted = predictedClean(modelOutput, sample: sample, at: point(index), config.prediction)
        var current = sample
        if index > 0, let lastSample { current = corrected(converted, lastSample: lastSample, sample: sample) }
        remember(converted)
        // lower_order_final: the last step is first order; the first steps warm up the history.
        lastOrder = min(min(2, schedule.count - index), lowerOrderCount + 1)
        lastSample = current
        let out = predicted(current, order: lastOrder)
        advance()
        return out
    }

    /// multistep_uni_p_bh_update: from sigma index `index` to `index + 1`.
    private func predicted(_ x: Tensor, order: Int) -> Tensor {
        let u = Update(point(index), point(index + 1))
        let out = Tensor(shape: x.shape)
        let po = out.data
        let px = x.data
        let m0 = history[history.count - 1].data
        let sampleCoeff = u.end.sigma / u.start.sigma
        let outputCoeff = u.end.alpha * u.hPhi1
        let residualCoeff = u.end.alpha * u.bh
        if order == 1 {
            for i in 0..<out.count { po[i] = sampleCoeff * px[i] - outputCoeff * m0[i] }
            return out
        }
        let rk = (point(index - 1).lambda - u.start.lambda) / u.h
        let m1 = history[history.count - 2].data
        let rho: Float = 0.5
        for i in 0..<out.count {
            let d1 = (m1[i] - m0[i]) / rk
            po[i] = (sampleCoeff * px[i] - outputCoeff * m0[i]) - residualCoeff * (rho * d1)
        }
        return out
    }

    /// multistep_uni_c_bh_update: corrects this step's sample with its own model output, from sigma index
    /// `index - 1` to `index`, at the order of the previous predictor.
    private func corrected(_ modelNow: Tensor, lastSample x: Tensor, sample: Tensor) -> Tensor {
        let u = Update(point(index - 1), point(index))
        let out = Tensor(shape: sample.shape)
        let po = out.data
        let px = x.data
        let m0 = history[history.count - 1].data
        let mt = modelNow.data
        let sampleCoeff = u.end.sigma / u.start.sigma
        let outputCoeff = u.end.alpha * u.hPhi1
        let residualCoeff = u.end.alpha * u.bh
        if lastOrder == 1 {
            let rho: Float = 0.5
            for i in 0..<out.count {
                po[i] = (sampleCoeff * px[i] - outputCoeff * m0[i]) - residualCoeff * (rho * (mt[i] - m0[i]))
            }
            return out
        }
        let rk = (point(index - 2).lambda - u.start.lambda) / u.h
        let (rho0, rho1) = solve2x2(rk: rk, b: u.b)
        let m1 = history[history.count - 2].data
        for i in 0..<out.count {
            let d1 = (m1[i] - m0[i]) / rk
            let correction = rho0 * d1 + rho1 * (mt[i] - m0[i])
            po[i] = (sampleCoeff * px[i] - outputCoeff * m0[i]) - residualCoeff * correction
        }
        return out
    }
}

/// torch.linalg.solve(R, b) for UniPC's R = [[1, 1], [rk, 1]]: LU with partial pivoting as LAPACK's sgesv does it.
func solve2x2(rk: Float, b: (Float, Float)) -> (Float, Float) {
    var rows: [(Float, Float, Float)] = [(1, 1, b.0), (rk, 1, b.1)]
    if abs(rk) > 1 { rows.swapAt(0, 1) }
    let (p0, p1, pb) = rows[0]
    let (q0, q1, qb) = rows[1]
    let l = q0 * (1 / p0)
    let u11 = q1 - l * p1
    let y1 = qb - l * pb
    let x1 = y1 / u11
    let x0 = (pb - p1 * x1) / p0
    return (x0, x1)
}
