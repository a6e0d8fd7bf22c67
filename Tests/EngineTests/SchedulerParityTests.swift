// Schedulers and the torch-compatible generator against diffusers/torch outputs.
import Checkpoint
import Schedulers
import TensorCore
import TorchRandom
import XCTest

final class SchedulerParityTests: XCTestCase {
    let io = try! Fixtures.tensors("schedulers")
    let meta = try! Fixtures.json("schedulers.json") as! [String: Any]

    func config(_ key: String) -> String { Fixtures.path("schedulers/\(key)/scheduler_config.json") }

    func checkTimesteps(_ key: String, set: (Int) -> Void, get: () -> [Int]) {
        let table = (meta[key] as! [String: Any])["timesteps"] as! [String: [Int]]
        for (n, expected) in table {
            set(Int(n)!)
            assertEqualInts(get(), expected, "\(key) timesteps(\(n))")
        }
    }

    func trajectory(_ key: String) -> (timesteps: [Int], states: [Tensor]) {
        let t = io["\(key).trajectory"]!
        let per = t.count / t.dim(0)
        let shape = Array(t.shape.dropFirst())
        let states = (0..<t.dim(0)).map { i -> Tensor in
            let s = Tensor(shape: shape); s.data.update(from: t.data + i * per, count: per); return s
        }
        return ((meta[key] as! [String: Any])["trajectory_timesteps"] as! [Int], states)
    }

    /// The synthetic model output tools/make_fixtures.py feeds to step i: tanh(randn(seed 1000 + i)) * 0.9.
    func syntheticOutput(_ shape: [Int], step i: Int) -> Tensor {
        let g = TorchGenerator(seed: UInt64(1000 + i))
        let t = Tensor(shape: shape)
        g.fillNormal(t.data, t.count)
        for j in 0..<t.count { t.data[j] = tanhf(t.data[j]) * 0.9 }
        return t
    }

    func checkDecoderScheduler(_ key: String) throws {
        let s = try loadScheduler(configPath: config(key))
        assertClose(Tensor(shape: [s.schedule.alphasCumprod.count], values: s.schedule.alphasCumprod), io["\(key).alphas_cumprod"]!,
                    "\(key) alphas_cumprod", relTol: 1e-6)
        checkTimesteps(key, set: { s.setTimesteps($0) }, get: { s.timesteps })
        let (ts, states) = trajectory(key)
        s.setTimesteps(ts.count)
        assertEqualInts(s.timesteps, ts, "\(key) trajectory timesteps")
        let g = TorchGenerator(seed: 21)
        var x = states[0]
        for (i, t) in ts.enumerated() {
            var shape = x.shape
            if s.usesLearnedVariance { shape[1] *= 2 }
            x = s.step(modelOutput: syntheticOutput(shape, step: i), timestep: t, sample: x, generator: g)
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
        assertClose(Tensor(shape: [1000], values: s.schedule.alphasCumprod), io["unclip.alphas_cumprod"]!, "unclip alphas_cumprod", relTol: 1e-6)
        assertClose(Tensor(shape: [1000], values: s.schedule.betas), io["unclip.betas"]!, "unclip betas", relTol: 1e-6)
        checkTimesteps("unclip", set: { s.setTimesteps($0) }, get: { s.timesteps })
        let (ts, states) = trajectory("unclip")
        s.setTimesteps(ts.count)
        let g = TorchGenerator(seed: 21)
        var x = states[0]
        for (i, t) in ts.enumerated() {
            let prev = i == ts.count - 1 ? nil : ts[i + 1]
            x = s.step(modelOutput: syntheticOutput(x.shape, step: i), timestep: t, sample: x, prevTimestep: prev, generator: g)
            assertClose(x, states[i + 1], "unclip sample after step \(i) (t=\(t))", relTol: 1e-5)
        }
    }

    func testStrengthCut() throws {
        let s = try loadScheduler(configPath: config("ddpm"))
        for case let c as [String: Any] in meta["strength"] as! [Any] {
            let n = c["steps"] as! Int, strength = c["strength"] as! Double
            s.setTimesteps(n)
            assertEqualInts(strengthTimesteps(s.timesteps, strength: strength), c["timesteps"] as! [Int], "strength \(strength) of \(n) steps")
        }
    }

    func testSchedulerConfigRejectsUnsupportedValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sched-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("scheduler_config.json").path
        try #"{"_class_name": "DDPMScheduler", "thresholding": true}"#.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try loadScheduler(configPath: path)) { e in
            XCTAssertEqual("\(e)", "\(path): config value thresholding = 1 is not supported by this engine")
        }
        try #"{"_class_name": "DDPMScheduler", "karras_sigmas": true}"#.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try loadScheduler(configPath: path)) { e in XCTAssertTrue("\(e)".contains("karras_sigmas")) }
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
