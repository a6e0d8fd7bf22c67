// The host side of the ABI: plugins found and loaded through dlopen, libraries of another ABI or malformed ones
// refused with a warning naming them, the plain-C plugin built from the header alone and run.
import Checkpoint
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import XCTest

final class ABITests: XCTestCase {
    func testAllPluginsLoadThroughDlopen() throws {
        try Product.requirePlugins()
        let ids = Set(Product.registry.plugins.map(\.id))
        XCTAssertEqual(ids, ["text2img", "img2img", "inpaint", "fusion", "controlnet-depth", "outpaint", "depth"])
        for alias in [
            "infer_kandinsky_2", "infer_kandinsky_2_img2img", "infer_kandinsky_2_inpaint",
            "infer_kandinsky_2_image_mixing",
            "infer_kandinsky_2_controlnet_depth",
        ] {
            XCTAssertNotNil(Product.registry.plugin(named: alias), "alias \(alias)")
        }
        XCTAssertTrue(Product.registry.warnings.isEmpty, "\(Product.registry.warnings)")
    }

    func testWrongMajorMalformedAndForeignLibrariesAreSkipped() throws {
        let dir = try Product.tempDir()
        let src = Product.repo + "/Tests/ProductTests/Plugins/"
        _ = try Product.compileC(src + "wrong_major.c", to: dir, name: "libkandinsky_plugin_future.so")
        _ = try Product.compileC(src + "malformed.c", to: dir, name: "libkandinsky_plugin_broken.so")
        _ = try Product.compileC(src + "no_entry.c", to: dir, name: "libkandinsky_plugin_noentry.so")
        try "not a library".write(toFile: dir + "/libkandinsky_plugin_text.so", atomically: true, encoding: .utf8)
        let r = PluginRegistry()
        r.load(directories: [dir])
        XCTAssertTrue(r.plugins.isEmpty, "\(r.plugins.map(\.id))")
        func warned(_ file: String, _ fragment: String) {
            XCTAssertTrue(
                r.warnings.contains { $0.contains(file) && $0.contains(fragment) },
                "no warning about \(file) saying '\(fragment)': \(r.warnings)")
        }
        warned("libkandinsky_plugin_future.so", "built for plugin ABI 2.0; this host speaks 1.5")
        warned("libkandinsky_plugin_broken.so", "descriptor has no id")
        warned("libkandinsky_plugin_noentry.so", "no kandinsky_plugin_entry symbol")
        warned("libkandinsky_plugin_text.so", "cannot load")
    }

    /// Compiles a C plugin with the C compiler and nothing but kandinsky_plugin.h, loads it in a fresh registry
    /// (the shared model server serves it) and runs plugin `id` on the sample picture.
    func runCPlugin(_ source: String, id: String, params: [String: String]) throws -> PixelImage {
        let lib = try Product.compileC(
            Product.repo + "/" + source, to: try Product.tempDir(), name: "libkandinsky_plugin_\(id).so")
        let r = PluginRegistry()
        try r.load(library: lib)
        let spec = try XCTUnwrap(r.plugin(named: id))
        _ = Product.registry  // installs the shared server
        let picture = try ImageFiles.read(Product.input("picture.png"))
        return try PluginRunner.run(
            RunRequest(plugin: spec, params: try spec.resolve(params), inputs: ["image": picture]), registry: r)
    }

    /// The C outpaint equals diffusers' inpainting of the grown canvas with the border as the mask
    /// (tools/make_fixtures.py `outpaint`): its content, not only its size.
    func testCPluginBuiltFromTheHeaderAloneMatchesDiffusers() throws {
        let url = URL(fileURLWithPath: Product.fixtures + "/outpaint.json")
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        let f = try SafetensorsFile(path: Product.fixtures + "/outpaint.safetensors")
        XCTAssertEqual(cases.count, 2)
        for (i, c) in cases.enumerated() {
            let out = try runCPlugin(
                "Plugins/Outpaint/outpaint.c", id: "outpaint",
                params: [
                    "prompt": c["prompt"] as! String, "border": "\(c["border"]!)", "seed": "\(c["seed"]!)",
                    "num_inference_steps": "\(c["steps"]!)", "guidance_scale": "\(c["guidance"]!)",
                    "prior_num_inference_steps": "\(c["prior_steps"]!)",
                    "prior_guidance_scale": "\(c["prior_guidance"]!)",
                    "model_name": Product.model("pipe_inpaint"), "prior_model_name": Product.model("pipe_prior"),
                    "keep_unmasked": "false",
                ])
            let e = f.load(try XCTUnwrap(f.entries["case\(i).image"]))
            assertMatchesDiffusers(
                out, e.array, height: e.dim(1), width: e.dim(2), "outpaint case \(i) (border \(c["border"]!))")
        }
    }

    func testDocumentedExamplePluginBuildsAndRuns() throws {
        // docs/writing-a-plugin.md's complete example.
        let out = try runCPlugin(
            "samples/plugins/variations.c", id: "variations",
            params: [
                "seed": "3", "num_inference_steps": "2", "model_name": Product.model("pipe_decoder"),
                "prior_model_name": Product.model("pipe_prior"),
            ])
        XCTAssertEqual(
            [out.width, out.height, out.channels], [64, 64, 3],
            "the model's natural size from its kandinsky_defaults.json")
    }

    func testPluginErrorsComeBackAsMessages() throws {
        try Product.requirePlugins()
        let spec = try XCTUnwrap(Product.registry.plugin(named: "inpaint"))
        // An inpaint run against a text2img decoder: the plugin refuses with a message, no crash.
        let values = try spec.resolve([
            "prompt": "x", "seed": "1", "num_inference_steps": "2", "prior_num_inference_steps": "2",
            "model_name": Product.model("pipe_decoder"),
        ])
        let picture = try ImageFiles.read(Product.input("picture.png"))
        let mask = try ImageFiles.read(Product.input("mask.png"))
        XCTAssertThrowsError(
            try PluginRunner.run(
                RunRequest(plugin: spec, params: values, inputs: ["image": picture, "mask": mask]),
                registry: Product.registry)
        ) { e in
            XCTAssertTrue(
                "\(e)".contains("is not an inpainting decoder (its UNet takes 4 channels, inpainting needs 9)"), "\(e)")
        }
    }
}
