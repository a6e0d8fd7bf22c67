// Every plugin, loaded through dlopen by the host and run through the C ABI, against the diffusers pipeline it
// implements (fixtures: tools/make_fixtures.py, `product` and `pipelines`).
import Checkpoint
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import TensorCore
import XCTest

final class PluginParityTests: XCTestCase {
    func expected(_ file: String, _ key: String) throws -> Tensor {
        let f = try SafetensorsFile(path: Product.fixtures + "/\(file).safetensors")
        guard let e = f.entries[key] else { throw SetupError(description: "\(file).safetensors has no \(key)") }
        return f.load(e)
    }

    func run(_ plugin: String, _ c: [String: Any], inputs: [String: String], decoder: String) throws -> PixelImage {
        try Product.runPlugin(
            plugin, parameters(plugin, c, decoder: decoder), inputFiles: inputs.mapValues(Product.input))
    }

    /// A fixture case's settings as the plugin's parameters.
    func parameters(_ plugin: String, _ c: [String: Any], decoder: String) -> [String: String] {
        var params: [String: String] = [
            "seed": "\(c["seed"]!)", "num_inference_steps": "\(c["steps"]!)", "guidance_scale": "\(c["guidance"]!)",
            "prior_num_inference_steps": "\(c["prior_steps"]!)", "prior_guidance_scale": "\(c["prior_guidance"]!)",
            "height": "\(c["h"]!)", "width": "\(c["w"]!)", "model_name": Product.model(decoder),
            "prior_model_name": Product.model("pipe_prior"),
        ]
        // diffusers passes the whole picture through the MoVQ decoder: keep_unmasked off is its output.
        if plugin == "inpaint" { params["keep_unmasked"] = "false" }
        if let p = c["prompt"] as? String { params["prompt"] = p }
        if let n = c["negative_prompt"] as? String { params["negative_prompt"] = n }
        if let s = c["strength"] { params["strength"] = "\(s)" }
        if let s = c["scheduler"] as? String { params["scheduler"] = s }
        if let d = c["depth_model"] as? String { params["depth_model_name"] = Product.model(d) }
        if let w = c["weights"] as? [Double] {
            params["weights"] = "[" + w.map { "\($0)" }.joined(separator: ", ") + "]"
        }
        return params
    }

    func testText2ImgMatchesCombinedPipeline() throws {
        let cases =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Product.fixtures + "/pipelines.json"))) as! [[String: Any]]
        for (i, c) in cases.enumerated() {
            let out = try run("text2img", c, inputs: [:], decoder: "pipe_decoder")
            let e = try expected("pipelines", "case\(i).image")
            assertMatchesDiffusers(
                out, e.array, height: e.dim(1), width: e.dim(2), "text2img case \(i) (seed \(c["seed"]!))")
        }
    }

    func productCases(_ plugin: String) throws -> [(Int, [String: Any])] {
        let all =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Product.fixtures + "/product.json"))) as! [[String: Any]]
        return all.enumerated().filter { $0.element["plugin"] as? String == plugin }.map { ($0.offset, $0.element) }
    }

    func check(_ plugin: String, decoder: String, inputs: ([String: Any]) -> [String: String]) throws {
        let cases = try productCases(plugin)
        XCTAssertGreaterThanOrEqual(cases.count, 2, "\(plugin): at least two seeds")
        for (i, c) in cases {
            let out = try run(plugin, c, inputs: inputs(c), decoder: decoder)
            let e = try expected("product", "case\(i).image")
            assertMatchesDiffusers(
                out, e.array, height: e.dim(1), width: e.dim(2), "\(plugin) case \(i) (seed \(c["seed"]!))")
        }
    }

    func testImg2ImgMatchesDiffusers() throws {
        try check("img2img", decoder: "pipe_decoder") { _ in ["image": "picture.png"] }
    }
    func testInpaintMatchesDiffusers() throws {
        try check("inpaint", decoder: "pipe_inpaint") { _ in ["image": "picture.png", "mask": "mask.png"] }
    }
    func testFusionMatchesInterpolate() throws {
        try check("fusion", decoder: "pipe_decoder") { _ in ["image1": "picture.png", "image2": "picture2.png"] }
    }
    /// A depth map, a depth map with an init image, a photo alone (diffusers' ControlNet pipeline fed with
    /// transformers' depth-estimation pipeline on the photo resized to the output, Ikomia's order) and a 16-bit
    /// depth map (resized as Pillow's I;16, / 65535).
    func testControlNetDepthMatchesDiffusers() throws {
        try check("controlnet-depth", decoder: "pipe_controlnet") { c in
            if c["photo"] != nil { return ["image": "picture.png"] }
            if c["depth16"] != nil { return ["depth": "depth16.png"] }
            return c["init_image"] != nil ? ["depth": "depth.png", "image": "picture.png"] : ["depth": "depth.png"]
        }
    }

    /// Each generating variant with diffusers' scheduler swapped for DDIM, DPM-Solver++ and UniPC
    /// (`pipe.scheduler = X.from_config(pipe.scheduler.config)`), fixtures from tools/make_fixtures.py
    /// `sampler_pipelines`.
    func testSamplersMatchDiffusers() throws {
        let url = URL(fileURLWithPath: Product.fixtures + "/sampler_pipelines.json")
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        let decoders = [
            "text2img": "pipe_decoder", "img2img": "pipe_decoder", "inpaint": "pipe_inpaint",
            "controlnet-depth": "pipe_controlnet",
        ]
        var covered = Set<String>()
        for (i, c) in cases.enumerated() {
            let plugin = c["plugin"] as! String
            let scheduler = c["scheduler"] as! String
            var inputs: [String: String] = [:]
            switch plugin {
            case "img2img": inputs = ["image": "picture.png"]
            case "inpaint": inputs = ["image": "picture.png", "mask": "mask.png"]
            case "controlnet-depth":
                inputs =
                    c["init_image"] != nil ? ["depth": "depth.png", "image": "picture.png"] : ["depth": "depth.png"]
            default: break
            }
            let out = try run(plugin, c, inputs: inputs, decoder: decoders[plugin]!)
            let e = try expected("sampler_pipelines", "case\(i).image")
            assertMatchesDiffusers(
                out, e.array, height: e.dim(1), width: e.dim(2),
                "\(plugin) with \(scheduler), case \(i) (seed \(c["seed"]!))")
            covered.insert("\(plugin) \(scheduler)")
        }
        XCTAssertEqual(covered.count, 12, "every variant with every sampler: \(covered.sorted())")
    }

    func testInpaintThenFusionLoadThePriorOnce() throws {
        try Product.requirePlugins()
        let server = try XCTUnwrap(ServerABI.server)
        let before = server.priorLoads
        let c: [String: Any] = [
            "seed": 1, "steps": 2, "guidance": 1.0, "prior_steps": 2, "prior_guidance": 1.0, "h": 64, "w": 64,
            "prompt": "a cat",
        ]
        func both() throws {
            _ = try run("inpaint", c, inputs: ["image": "picture.png", "mask": "mask.png"], decoder: "pipe_inpaint")
            _ = try run(
                "fusion", c.merging(["weights": [0.5, 0.5]]) { $1 }, inputs: ["image1": "picture.png"],
                decoder: "pipe_decoder")
        }
        try both()
        XCTAssertLessThanOrEqual(
            server.priorLoads - before, 1, "the prior was loaded \(server.priorLoads - before) times for two tasks")
        // Other tests of this process load other priors; this one stays loaded whatever ran before.
        let loaded = server.priorLoads
        try both()
        XCTAssertEqual(server.priorLoads, loaded, "the prior was loaded again for the same two tasks")
    }
}
