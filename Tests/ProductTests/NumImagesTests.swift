// num_images: image k of a run equals, byte for byte, a run of seed + k alone, on every generating plugin, while
// the images are denoised as one batch; and every front end writes and records each image on its own.
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import Pipelines
import PluginHost
import XCTest

final class NumImagesTests: XCTestCase {
    struct Case {
        let name: String
        let plugin: String
        let params: [String: String]
        let inputs: [String: String]
    }

    static let few = [
        "prompt": "a red circle", "num_inference_steps": "3", "prior_num_inference_steps": "2",
        "prior_guidance_scale": "4", "height": "64", "width": "64",
    ]

    static let cases: [Case] = {
        func make(
            _ name: String, _ plugin: String, _ extra: [String: String], _ inputs: [String: String] = [:],
            sized: Bool = true
        ) -> Case {
            // outpaint sizes its canvas from the picture: it has no width and height.
            let base = sized ? few : few.filter { $0.key != "width" && $0.key != "height" }
            return Case(
                name: name, plugin: plugin, params: base.merging(extra) { $1 },
                inputs: inputs.mapValues(Product.input))
        }
        return [
            // DDPM draws noise at every step from each image's own generator; guidance doubles the UNet batch.
            make("text2img, guided ddpm", "text2img", ["guidance_scale": "4"]),
            make("text2img, dpmsolver++", "text2img", ["scheduler": "dpmsolver++", "num_inference_steps": "4"]),
            make("img2img", "img2img", ["strength": "0.7", "guidance_scale": "4"], ["image": "picture.png"]),
            make(
                "fusion, prompt and two images", "fusion", ["weights": "[0.4, 0.3, 0.3]", "guidance_scale": "4"],
                ["image1": "picture.png", "image2": "picture2.png"]),
            make("inpaint, whole", "inpaint", ["guidance_scale": "4"], ["image": "picture.png", "mask": "mask.png"]),
            make(
                "inpaint, masked area", "inpaint", ["inpaint_area": "masked", "masked_padding": "8"],
                ["image": "picture.png", "mask": "mask.png"]),
            make("controlnet-depth", "controlnet-depth", ["guidance_scale": "4"], ["depth": "depth.png"]),
            make(
                "controlnet-depth with an init image", "controlnet-depth", ["strength": "0.6"],
                ["depth": "depth.png", "image": "picture.png"]),
            make(
                "outpaint (C)", "outpaint", ["border": "8", "guidance_scale": "4"], ["image": "picture.png"],
                sized: false),
        ]
    }()

    func testImageKOfEveryPluginEqualsARunOfSeedPlusKAlone() throws {
        try Product.requirePlugins()
        let count = 3
        for c in Self.cases {
            let spec = try XCTUnwrap(Product.registry.plugin(named: c.plugin), c.plugin)
            var params = c.params
            params["seed"] = "40"
            params["num_images"] = "\(count)"
            let inputs = try c.inputs.mapValues { try ImageFiles.read($0) }
            var denoiseCalls = 0
            let batch = try PluginRunner.runImages(
                RunRequest(plugin: spec, params: try spec.resolve(params), inputs: inputs),
                registry: Product.registry,
                progress: { stage, step, _ in
                    if stage == "decoder" && step == 0 { denoiseCalls += 1 }
                    return true
                })
            XCTAssertEqual(batch.count, count, "\(c.name): images returned")
            XCTAssertEqual(denoiseCalls, 1, "\(c.name): decoder loops for \(count) images (one batch)")
            for (k, image) in batch.enumerated() {
                var alone = c.params
                alone["seed"] = "\(40 + k)"
                let single = try Product.runPlugin(c.plugin, alone, inputFiles: c.inputs)
                assertSamePixels(image, single, "\(c.name): image \(k) of the batch against seed \(40 + k) alone")
            }
            XCTAssertNotEqual(batch[0].pixels, batch[1].pixels, "\(c.name): images 0 and 1 are the same picture")
        }
    }

    func assertSamePixels(_ got: PixelImage, _ want: PixelImage, _ what: String) {
        guard got.width == want.width, got.height == want.height, got.channels == want.channels else {
            XCTFail("\(what): \(got.width)x\(got.height)x\(got.channels), expected "
                + "\(want.width)x\(want.height)x\(want.channels)")
            return
        }
        let differing = zip(got.pixels, want.pixels).enumerated().filter { $0.element.0 != $0.element.1 }
        guard let first = differing.first else { return }
        let pixel = first.offset / got.channels
        let largest = differing.map { abs(Int($0.element.0) - Int($0.element.1)) }.max() ?? 0
        XCTFail(
            "\(what): \(differing.count) samples differ, the first at pixel (x \(pixel % got.width), y "
                + "\(pixel / got.width)) channel \(first.offset % got.channels): \(first.element.0) against "
                + "\(first.element.1); largest difference \(largest) levels")
    }

    func testTheBatchLimitFollowsTheMemoryLeft() throws {
        let pipeline = try DecoderPipeline(folder: Product.model("pipe_decoder"))
        let perImage = pipeline.activationBytesPerSample(latentHeight: 96, latentWidth: 96)
        XCTAssertGreaterThan(perImage, 0)
        func limit(_ available: Int, guidance: Float = 4, wanted: Int = 8) -> Int {
            pipeline.batchLimit(
                latentHeight: 96, latentWidth: 96, guidance: guidance, availableBytes: available, wanted: wanted)
        }
        XCTAssertEqual(limit(0), 1, "no memory left still runs one image")
        XCTAssertEqual(limit(Int.max / 4), 8, "plenty of memory takes every image wanted")
        // Half the free memory is for the batch; guidance doubles an image's samples.
        XCTAssertEqual(limit(2 * 3 * 2 * perImage), 3, "room for three guided images")
        XCTAssertEqual(limit(2 * 3 * perImage, guidance: 1), 3, "room for three unguided images")
        XCTAssertEqual(limit(2 * 3 * 2 * perImage - 1), 2, "a byte short of three")
    }

    func testTheCLIWritesANumberedFileRecordingItsOwnSeed() throws {
        try Product.requirePlugins()
        let folder = try Product.tempDir()
        let run = try Product.cli(
            ["run", "text2img", "--quiet", "-o", folder + "/cat.png", "--seed", "7", "--num-images", "2"]
                + Self.few.flatMap { ["--" + $0.key, $0.value] })
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(
            run.stderr.contains("/cat-0.png .. ") && run.stderr.contains("/cat-1.png (2 images, 64x64)"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/cat.png"), "cat.png written besides")
        for k in 0..<2 {
            let png = try XCTUnwrap(FileManager.default.contents(atPath: folder + "/cat-\(k).png"), "cat-\(k).png")
            for text in ["kandinsky:seed\u{0}\(7 + k)", "kandinsky:num_images\u{0}1", "kandinsky:image\u{0}\(k) of 2"] {
                XCTAssertNotNil(png.range(of: Data(text.utf8)), "cat-\(k).png does not record \(text.debugDescription)")
            }
        }
        let refused = try Product.cli(["run", "text2img", "-o", folder + "/x.png", "--num-images", "65"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("num_images"), refused.stderr)
    }
}
