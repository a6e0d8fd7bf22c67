// The depth plugin and controlnet-depth's inputs, through the CLI and the ABI (the networks and the pipeline are
// checked against transformers in Tests/EngineTests/DepthParityTests.swift).
import Checkpoint
import Foundation
import ImageIO
import ImageProcessing
import KandinskyPluginABI
import ModelServer
import Pipelines
import PluginSupport
import XCTest

final class DepthTests: XCTestCase {
    /// A 16-bit depth map's hint, as controlnet-depth builds it (the server's image_resize, then PluginSupport's
    /// depthHintPlane), equals the reference's (Pillow I;16 bicubic resize / 65535) bit for bit, and the same map
    /// cut to 8 bits would not.
    func testA16BitDepthMapKeepsItsPrecisionIntoTheHint() throws {
        _ = Product.registry
        let server = ServerABI.table.pointee
        let cases = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Product.fixtures + "/product.json"))) as! [[String: Any]]
        let index = try XCTUnwrap(cases.firstIndex { $0["depth16"] != nil }, "product.json has no 16-bit depth case")
        let file = try SafetensorsFile(path: Product.fixtures + "/product.safetensors")
        let expected = file.load(try XCTUnwrap(file.entries["case\(index).hint"]))
        let (height, width) = (expected.dim(2), expected.dim(3))
        let depth = try ImageFiles.read(Product.input("depth16.png"))
        func hint(_ samples: UnsafeMutableRawPointer, bits: UInt32) throws -> [Float] {
            var image = kd_image_t(
                struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: Int32(depth.width),
                height: Int32(depth.height), channels: 1, row_bytes: Int64(depth.width) * Int64(bits / 8),
                data: samples.assumingMemoryBound(to: UInt8.self), bits_per_sample: bits)
            let resized = try XCTUnwrap(
                server.image_resize(&image, Int32(width), Int32(height), kd_resample(KD_RESAMPLE_BICUBIC), 0))
            defer { server.image_release(resized) }
            XCTAssertEqual(resized.pointee.bits_per_sample, bits, "image_resize changed the sample width")
            var plane = [Float](repeating: 0, count: width * height)
            depthHintPlane(resized.pointee, into: &plane)
            return plane
        }
        var samples = try XCTUnwrap(depth.wideSamples, "depth16.png read without its 16 bits")
        let full = try hint(&samples, bits: 16)
        let reference = Array(expected.array.prefix(width * height))
        let wrong = (0..<full.count).filter { full[$0] != reference[$0] }
        XCTAssertTrue(
            wrong.isEmpty,
            "\(wrong.count) hint values differ, first at (x \(wrong.first.map { $0 % width } ?? 0), "
                + "y \(wrong.first.map { $0 / width } ?? 0))")
        var highBytes = depth.pixels
        let cut = try hint(&highBytes, bits: 8)
        let moved = zip(cut, reference).filter { abs($0 - $1) > 0.5 / 255 }.count
        XCTAssertGreaterThan(moved, full.count / 10, "the 8-bit cut's hint is as close as the 16-bit one's")
    }

    /// `kandinsky run depth --image photo.png -o depth.png` writes the engine's depth picture, byte for byte: one
    /// grey channel at the photo's size. In fp32, the parity mode (auto is bf16 on a CPU with avx512_bf16).
    func testDepthPluginWritesTheEstimatedDepthPicture() throws {
        let photo = Product.input("depth_photo_depth_anything.png")
        let out = try Product.tempDir() + "/depth.png"
        let result = try Product.cli(
            [
                "run", "depth", "--image", photo, "--depth-model-name", Product.model("depth_anything"),
                "--precision", "fp32", "-o", out,
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let written = try ImageFiles.read(out)
        let engine = try DepthEstimationPipeline(folder: Product.model("depth_anything"))(try ImageFiles.read(photo))
        XCTAssertEqual([written.width, written.height, written.channels], [45, 37, 1], "the depth picture's shape")
        let differing = zip(written.pixels, engine.picture.pixels).filter { $0 != $1 }.count
        XCTAssertEqual(differing, 0, "\(differing) of \(written.pixels.count) depth levels differ from the engine's")
    }

    func testControlNetNeedsADepthMapOrAPicture() throws {
        let params = [
            "prompt": "a robot", "seed": "1", "num_inference_steps": "2", "prior_num_inference_steps": "2",
        ]
        XCTAssertThrowsError(try Product.runPlugin("controlnet-depth", params, inputFiles: [:])) { error in
            XCTAssertTrue("\(error)".contains("needs --depth (a depth map) or --image"), "\(error)")
        }
    }

    /// A folder that is not a depth model is named in the error, before the prior runs.
    func testAWrongDepthModelIsNamed() throws {
        let params = [
            "prompt": "a robot", "seed": "1", "num_inference_steps": "2", "prior_num_inference_steps": "2",
            "depth_model_name": Product.model("pipe_decoder"),
        ]
        XCTAssertThrowsError(
            try Product.runPlugin("controlnet-depth", params, inputFiles: ["image": Product.input("picture.png")])
        ) { error in
            XCTAssertTrue("\(error)".contains("pipe_decoder"), "\(error)")
        }
    }
}
