// The depth plugin and controlnet-depth's inputs, through the CLI and the ABI (the networks and the pipeline are
// checked against transformers in Tests/EngineTests/DepthParityTests.swift).
import Foundation
import ImageIO
import ImageProcessing
import Pipelines
import XCTest

final class DepthTests: XCTestCase {
    /// `kandinsky run depth --image photo.png -o depth.png` writes the engine's depth picture, byte for byte: one
    /// grey channel at the photo's size.
    func testDepthPluginWritesTheEstimatedDepthPicture() throws {
        let photo = Product.input("depth_photo_depth_anything.png")
        let out = try Product.tempDir() + "/depth.png"
        let result = try Product.cli(
            ["run", "depth", "--image", photo, "--depth-model-name", Product.model("depth_anything"), "-o", out])
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
