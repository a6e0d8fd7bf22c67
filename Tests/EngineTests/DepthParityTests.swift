// Depth estimation against transformers (tools/make_fixtures.py `depth`): DPTForDepthEstimation and
// DepthAnythingForDepthEstimation on tiny random-weight models, DPTImageProcessor, and the depth-estimation
// pipeline's post-processing and 8-bit picture.
import ImageProcessing
import Networks
import Pipelines
import TensorCore
import XCTest

final class DepthParityTests: XCTestCase {
    func testDepthNetworksMatchTransformers() throws {
        let io = try Fixtures.tensors("depth")
        let meta = try Fixtures.json("depth.json") as! [String: Any]
        for entry in meta["models"] as! [[String: Any]] {
            let name = entry["name"] as! String
            let model = try loadDepthEstimationModel(folder: Fixtures.model(name), variant: entry["variant"] as? String)
            for input in 0..<(entry["inputs"] as! Int) {
                let pixelValues = io["\(name).\(input).pixel_values"]!
                assertClose(model(pixelValues), io["\(name).\(input).predicted_depth"]!,
                            "\(name) predicted_depth for pixel_values \(pixelValues.shape)")
            }
        }
    }

    func testDPTImageProcessorIsBitExact() throws {
        let io = try Fixtures.tensors("depth")
        let meta = try Fixtures.json("depth.json") as! [String: Any]
        for (index, inputs) in (meta["processor"] as! [Int]).enumerated() {
            let path = Fixtures.path("depth_processor/\(index)/preprocessor_config.json")
            let processor = try DPTImageProcessor(configPath: path)
            for input in 0..<inputs {
                let image = pixelImage(io["processor\(index).\(input).in"]!)
                assertClose(processor(image), io["processor\(index).\(input).out"]!,
                            "processor \(index) pixel_values for a \(image.width)x\(image.height) image", relTol: 0)
            }
        }
    }

    /// Post-processing from transformers' own predicted depth: the float map and the 8-bit picture, bit for bit.
    func testDepthPostProcessingMatchesTransformers() throws {
        let io = try Fixtures.tensors("depth")
        for name in (try Fixtures.json("depth.json") as! [String: Any])["pipeline"] as! [String] {
            let key = "pipeline.\(name)"
            let image = io[key + ".image"]!
            let result = DepthEstimationPipeline.postProcess(io[key + ".model_depth"]!, height: image.dim(0),
                                                            width: image.dim(1))
            assertClose(result.depth, io[key + ".depth"]!, "\(name) post-processed depth", relTol: 0)
            let picture = Tensor(shape: [image.dim(0), image.dim(1)], values: result.picture.pixels.map(Float.init))
            assertClose(picture, io[key + ".picture"]!, "\(name) depth picture (levels)", relTol: 0)
        }
    }

    /// The whole pipeline from the picture: processor, model, post-processing.
    func testDepthEstimationPipelineMatchesTransformers() throws {
        let io = try Fixtures.tensors("depth")
        for name in (try Fixtures.json("depth.json") as! [String: Any])["pipeline"] as! [String] {
            let key = "pipeline.\(name)"
            let pipeline = try DepthEstimationPipeline(folder: Fixtures.model(name))
            let image = pixelImage(io[key + ".image"]!)
            assertClose(pipeline.processor(image), io[key + ".pixel_values"]!, "\(name) pipeline pixel_values",
                        relTol: 0)
            let result = try pipeline(image)
            assertClose(result.depth, io[key + ".depth"]!, "\(name) pipeline depth")
            assertPictureMatches(result.picture, io[key + ".picture"]!, "\(name) pipeline depth picture")
        }
    }

    /// From the picture, the networks' float rounding (1e-4 of the output scale, not bit for bit) reaches the
    /// 8-bit picture, which truncates (d - min) / (max - min) * 255: a value within rounding of a whole level can
    /// land on either side. Allowed: one level, on at most 2% of the pixels; anything else fails.
    func assertPictureMatches(_ picture: PixelImage, _ expected: Tensor, _ name: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        var offByOne = 0
        for (index, level) in picture.pixels.enumerated() {
            let miss = abs(Float(level) - expected.data[index])
            if miss > 1 {
                return XCTFail("\(name): pixel (\(index % picture.width), \(index / picture.width)) is \(level),"
                                   + " expected \(expected.data[index])", file: file, line: line)
            }
            if miss == 1 { offByOne += 1 }
        }
        print("\(name): \(offByOne) of \(picture.pixels.count) pixels one level off")
        XCTAssertLessThanOrEqual(offByOne, picture.pixels.count / 50, "\(name): pixels one level off", file: file,
                                 line: line)
    }
}
