// Cancellation and concurrent use: Ctrl-C stops a run and leaves no file; two runs on two threads share the server
// and each still equals diffusers.
import Checkpoint
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import XCTest

final class ConcurrencyTests: XCTestCase {
    /// SIGINT (Ctrl-C), SIGTERM and SIGHUP sent to the CLI alone (not its worker) cancel the run: exit status
    /// 128 + signal, the plugin's "cancelled", no output and no temporary file.
    func testSignalsCancelAndWriteNothing() throws {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] { try cancelRun(with: signalNumber) }
    }

    func cancelRun(with signalNumber: Int32) throws {
        try Product.requirePlugins()
        let dir = try Product.tempDir()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Product.buildDir + "/kandinsky")
        // Many steps at a size where each takes a while: the interrupt lands mid-run.
        p.arguments = [
            "run", "text2img", "--prompt", "x", "--seed", "1", "--num-inference-steps", "1000",
            "--prior-num-inference-steps", "2",
            "--width", "256", "--height", "256", "--model-name", Product.model("pipe_decoder"),
            "--prior-model-name", Product.model("pipe_prior"), "-o", dir + "/out.png",
        ]
        let err = Pipe()
        p.standardError = err
        try p.run()
        // Wait until the decoder loop reports progress, then interrupt.
        var seen = Data()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !String(decoding: seen, as: UTF8.self).contains("decoder") {
            seen.append(err.fileHandleForReading.availableData)
        }
        kill(p.processIdentifier, signalNumber)
        seen.append(err.fileHandleForReading.readDataToEndOfFile())
        p.waitUntilExit()
        let text = String(decoding: seen, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 128 + signalNumber, "exit status after signal \(signalNumber): \(text)")
        XCTAssertTrue(text.contains("text2img: cancelled"), "signal \(signalNumber): \(text)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [],
                       "signal \(signalNumber): no output and no temporary file")
    }

    func testTwoRunsOnTwoThreadsMatchDiffusers() throws {
        try Product.requirePlugins()
        let spec = try XCTUnwrap(Product.registry.plugin(named: "text2img"))
        let cases =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Product.fixtures + "/pipelines.json"))) as! [[String: Any]]
        let f = try SafetensorsFile(path: Product.fixtures + "/pipelines.safetensors")
        // One slot per thread, written through raw buffers (no shared array mutation).
        let results = UnsafeMutableBufferPointer<PixelImage?>.allocate(capacity: 2)
        let errors = UnsafeMutableBufferPointer<Error?>.allocate(capacity: 2)
        _ = results.initialize(from: [nil, nil])
        _ = errors.initialize(from: [nil, nil])
        defer {
            results.deallocate()
            errors.deallocate()
        }
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let c = cases[i]
            do {
                var params = [
                    "prompt": c["prompt"] as! String, "seed": "\(c["seed"]!)", "num_inference_steps": "\(c["steps"]!)",
                    "guidance_scale": "\(c["guidance"]!)", "prior_num_inference_steps": "\(c["prior_steps"]!)",
                    "prior_guidance_scale": "\(c["prior_guidance"]!)", "height": "\(c["h"]!)", "width": "\(c["w"]!)",
                    "model_name": Product.model("pipe_decoder"), "prior_model_name": Product.model("pipe_prior"),
                ]
                if let n = c["negative_prompt"] as? String { params["negative_prompt"] = n }
                results[i] = try PluginRunner.run(
                    RunRequest(plugin: spec, params: try spec.resolve(params), inputs: [:]), registry: Product.registry)
            } catch { errors[i] = error }
        }
        for i in 0..<2 {
            XCTAssertNil(errors[i])
            let e = f.load(f.entries["case\(i).image"]!)
            if let r = results[i] {
                assertMatchesDiffusers(r, e.array, height: e.dim(1), width: e.dim(2), "concurrent text2img case \(i)")
            }
        }
    }

    /// Many runs at once on one loaded decoder, with different samplers and step counts (each its own schedule and
    /// multistep history), while another thread trims memory: each equals its own run alone, bit for bit.
    func testConcurrentRunsWithDifferentSamplersEqualTheirSingleRuns() throws {
        try Product.requirePlugins()
        let runs: [(String, Int)] = [
            ("ddpm", 3), ("unipc", 5), ("dpmsolver++", 4), ("ddim", 2), ("unipc", 2), ("dpmsolver++", 6),
        ]
        func params(_ scheduler: String, _ steps: Int, seed: Int) -> [String: String] {
            [
                "prompt": "a lighthouse", "seed": "\(seed)", "scheduler": scheduler, "num_inference_steps": "\(steps)",
                "guidance_scale": "3", "prior_num_inference_steps": "2", "width": "64", "height": "64",
                "model_name": Product.model("pipe_decoder"), "prior_model_name": Product.model("pipe_prior"),
            ]
        }
        let alone = try runs.enumerated().map { i, r in
            try Product.runPlugin("text2img", params(r.0, r.1, seed: 40 + i), inputFiles: [:])
        }
        let server = try XCTUnwrap(ServerABI.server)
        let budget = server.maxMemory
        defer { server.maxMemory = budget }
        server.maxMemory = 0
        let results = UnsafeMutableBufferPointer<Result<PixelImage, Error>?>.allocate(capacity: runs.count + 1)
        _ = results.initialize(from: Array(repeating: nil, count: runs.count + 1))
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: runs.count + 1) { i in
            // The last worker keeps dropping every loaded model while the others run on them.
            if i == runs.count {
                for _ in 0..<50 {
                    server.trim()
                    usleep(2000)
                }
                return
            }
            results[i] = Result {
                try Product.runPlugin("text2img", params(runs[i].0, runs[i].1, seed: 40 + i), inputFiles: [:])
            }
        }
        for (i, r) in runs.enumerated() {
            let together = try XCTUnwrap(results[i]).get()
            let differing = zip(together.pixels, alone[i].pixels).filter { $0 != $1 }.count
            XCTAssertEqual(
                differing, 0,
                "run \(i) (\(r.0), \(r.1) steps) run concurrently differs from its single run in \(differing) values")
        }
    }
}
