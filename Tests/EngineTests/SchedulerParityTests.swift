// Schedulers and the torch-compatible generator against diffusers/torch outputs.
import Checkpoint
import Schedulers
import TensorCore
import TorchRandom
import XCTest

/// The synthetic model output tools/make_fixtures.py feeds to step i: tanh(randn(seed 1000 + i)) * 0.9.
func syntheticOutput(_ shape: [Int], step i: Int) -> Tensor {
    let g = TorchGenerator(seed: UInt64(1000 + i))
    let t = Tensor(shape: shape)
    g.fillNormal(t.data, t.count)
    for j in 0..<t.count { t.data[j] = tanhf(t.data[j]) * 0.9 }
    return t
}

final class SchedulerParityTests: XCTestCase {
    let io = try! Fixtures.tensors("schedulers")
    let meta = try! Fixtures.json("schedulers.json") as! [String: Any]

    func config(_ key: String) -> String { Fixtures.path("schedulers/\(key)/scheduler_config.json") }

    func checkTimesteps(_ key: String, get: (Int) -> [Int]) {
        let table = (meta[key] as! [String: Any])["timesteps"] as! [String: [Int]]
        for (n, expected) in table { assertEqualInts(get(Int(n)!), expected, "\(key) timesteps(\(n))") }
    }

    func trajectory(_ key: String) -> (timesteps: [Int], states: [Tensor]) {
        let t = io["\(key).trajectory"]!
        let per = t.count / t.dim(0)
        let shape = Array(t.shape.dropFirst())
        let states = (0..<t.dim(0)).map { i -> Tensor in
            let s = Tensor(shape: shape)
            s.data.update(from: t.data + i * per, count: per)
            return s
        }
        return ((meta[key] as! [String: Any])["trajectory_timesteps"] as! [Int], states)
    }

    func checkDecoderScheduler(_ key: String) throws {
        let config = try DecoderSchedulerConfig(path: config(key))
        let s = try makeSampler(config.ownKind, config: config)
        assertClose(
            Tensor(shape: [s.schedule.alphasCumprod.count], values: s.schedule.alphasCumprod),
            io["\(key).alphas_cumprod"]!,
            "\(key) alphas_cumprod", relTol: 1e-6)
        checkTimesteps(key, get: { s.timesteps(steps: $0) })
        let (ts, states) = trajectory(key)
        let run = s.run(steps: ts.count)
        assertEqualInts(Array(run.timesteps), ts, "\(key) trajectory timesteps")
        let g = TorchGenerator(seed: 21)
        var x = states[0]
        for (i, t) in ts.enumerated() {
            var shape = x.shape
            if s.usesLearnedVariance { shape[1] *= 2 }
            x = run.step(modelOutput: syntheticOutput(shape, step: i), sample: x, noise: BatchNoise(g))
            assertClose(x, states[i + 1], "\(key) sample after step \(i) (t=\(t))", relTol: 1e-5)
        }
        let noisy = s.addNoise(io["add_noise.x0"]!, noise: io["add_noise.noise"]!, timestep: 500)
        assertClose(noisy, io["\(key).add_noise_t500"]!, "\(key) add_noise(t=500)", relTol: 1e-6)
    }

    func testDDPMDecoderConfig() throws { try checkDecoderScheduler("ddpm") }
    func testDDPMLearnedRange() throws { try checkDecoderScheduler("ddpm_learned_range") }
    func testDDPMTrailingSpacing() throws { try checkDecoderScheduler("ddpm_trailing") }
    func testDDPMLinspaceSpacing() throws { try checkDecoderScheduler("ddpm_linspace") }
    func testDDIM() throws { try checkDecoderScheduler("ddim") }
    func testDDIMOffsetZero() throws { try checkDecoderScheduler("ddim_offset0") }

    func testUnCLIP() throws {
        let s = try UnCLIPScheduler(configPath: config("unclip"))
        assertClose(
            Tensor(shape: [1000], values: s.schedule.alphasCumprod), io["unclip.alphas_cumprod"]!,
            "unclip alphas_cumprod", relTol: 1e-6)
        assertClose(Tensor(shape: [1000], values: s.schedule.betas), io["unclip.betas"]!, "unclip betas", relTol: 1e-6)
        checkTimesteps("unclip", get: { s.timesteps(steps: $0) })
        let (ts, states) = trajectory("unclip")
        let g = TorchGenerator(seed: 21)
        var x = states[0]
        for (i, t) in ts.enumerated() {
            let prev = i == ts.count - 1 ? nil : ts[i + 1]
            x = s.step(
                modelOutput: syntheticOutput(x.shape, step: i), timestep: t, sample: x, prevTimestep: prev, generator: g
            )
            assertClose(x, states[i + 1], "unclip sample after step \(i) (t=\(t))", relTol: 1e-5)
        }
    }

    func testSchedulerConfigRejectsUnsupportedValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sched-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("scheduler_config.json").path
        try #"{"_class_name": "DDPMScheduler", "thresholding": true}"#.write(
            toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DecoderSchedulerConfig(path: path)) { e in
            XCTAssertEqual("\(e)", "\(path): config value thresholding = 1 is not supported by this engine")
        }
        try #"{"_class_name": "DDPMScheduler", "karras_sigmas": true}"#.write(
            toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DecoderSchedulerConfig(path: path)) { e in
            XCTAssertTrue("\(e)".contains("karras_sigmas"))
        }
        try #"{"_class_name": "DDPMScheduler", "variance_type": "learned_range"}"#.write(
            toFile: path, atomically: true, encoding: .utf8)
        let learned = try DecoderSchedulerConfig(path: path)
        for kind in [SamplerKind.dpmSolverPlusPlus, .uniPC] {
            XCTAssertThrowsError(try makeSampler(kind, config: learned)) { e in
                XCTAssertEqual(
                    "\(e)", "scheduler \(kind.rawValue) cannot run a decoder whose scheduler config learns the variance"
                )
            }
        }
    }
}

final class TorchRandomTests: XCTestCase {
    func testRandnMatchesTorchAcrossCallsAndSeeds() throws {
        let io = try Fixtures.tensors("rng")
        for case let c as [String: Any] in try Fixtures.json("rng.json") as! [Any] {
            let seed = (c["seed"] as! NSNumber).uint64Value
            let g = TorchGenerator(seed: seed)
            for (i, shape) in (c["shapes"] as! [[Int]]).enumerated() {
                let got = Tensor(shape: shape, values: g.randn(shape.reduce(1, *)))
                // Bit-exact: same uniforms, same cephes log/sincos as torch's AVX2 kernel.
                assertClose(got, io["s\(seed).d\(i)"]!, "seed \(seed) draw \(i) shape \(shape)", relTol: 0, absTol: 0)
            }
        }
    }
}

/// DDIM, DPM-Solver++ and UniPC as diffusers builds them from a Kandinsky decoder's DDPM config
/// (`X.from_config(pipe.scheduler.config)`), against tools/make_fixtures.py `samplers`.
final class SamplerParityTests: XCTestCase {
    let io = try! Fixtures.tensors("samplers")
    let meta = try! Fixtures.json("samplers.json") as! [String: Any]
    /// The published decoder's scheduler config (no timestep_spacing) and the same with each spacing written out.
    let configs = ["published", "leading", "linspace", "trailing"]

    func sampler(_ kind: SamplerKind, config: String) throws -> Sampler {
        try makeSampler(
            kind, config: try DecoderSchedulerConfig(path: Fixtures.path("samplers/\(config)/scheduler_config.json")))
    }

    func check(_ kind: SamplerKind) throws {
        for config in configs {
            let key = "\(kind.rawValue).\(config)"
            let s = try sampler(kind, config: config)
            let entry = meta[key] as! [String: Any]
            for (n, expected) in entry["timesteps"] as! [String: [Int]] {
                assertEqualInts(s.timesteps(steps: Int(n)!), expected, "\(key) timesteps(\(n))")
            }
            let t = entry["add_noise_timestep"] as! Int
            assertClose(
                s.addNoise(io["add_noise.x0"]!, noise: io["add_noise.noise"]!, timestep: t), io["\(key).add_noise"]!,
                "\(key) add_noise(t=\(t))", relTol: 1e-6)
            for (name, value) in entry["trajectories"] as! [String: [String: Any]] {
                let steps = value["steps"] as! Int
                let begin = value["begin"] as! Int
                let states = io["\(key).\(name)"]!
                let per = states.count / states.dim(0)
                func state(_ i: Int) -> Tensor {
                    let x = Tensor(shape: [1, 4, 3, 5])
                    x.data.update(from: states.data + i * per, count: per)
                    return x
                }
                let run = s.makeRun(schedule: s.timesteps(steps: steps), beginIndex: begin)
                assertEqualInts(Array(run.timesteps), value["timesteps"] as! [Int], "\(key) run \(name) timesteps")
                let g = TorchGenerator(seed: 21)
                var x = state(0)
                for i in 0..<run.timesteps.count {
                    x = run.step(modelOutput: syntheticOutput(x.shape, step: i), sample: x, noise: BatchNoise(g))
                    assertClose(x, state(i + 1), "\(key) run \(name): sample after step \(i)", relTol: 1e-5)
                }
            }
        }
    }

    func testDDPM() throws { try check(.ddpm) }
    func testDDIMFromDDPMConfig() throws { try check(.ddim) }
    func testDPMSolverPlusPlus() throws { try check(.dpmSolverPlusPlus) }
    func testUniPC() throws { try check(.uniPC) }

    func testStrengthCutOfEverySampler() throws {
        for case let c as [String: Any] in meta["strength"] as! [Any] {
            let name = c["scheduler"] as! String
            let n = c["steps"] as! Int
            let strength = c["strength"] as! Double
            let s = try sampler(SamplerKind(rawValue: name)!, config: "published")
            assertEqualInts(
                Array(s.run(steps: n, strength: strength).timesteps), c["timesteps"] as! [Int],
                "\(name): strength \(strength) of \(n) steps")
        }
    }
}
