// Pillow resizes and CLIPImageProcessor outputs, bit for bit.
import ImageProcessing
import TensorCore
import XCTest

func pixelImage(_ t: Tensor) -> PixelImage {
    PixelImage(width: t.dim(1), height: t.dim(0), channels: t.dim(2), pixels: t.array.map { UInt8($0) })
}

final class ImageProcessingTests: XCTestCase {
    func testPillowResizeIsBitExact() throws {
        let io = try Fixtures.tensors("images")
        let meta = try Fixtures.json("images.json") as! [String: Any]
        for (i, c) in (meta["resize"] as! [[String: Any]]).enumerated() {
            let size = c["size"] as! [Int]
            let filter = ResampleFilter(rawValue: c["filter"] as! Int)!
            let gap = (c["reducing_gap"] as? NSNumber)?.doubleValue
            let out = pixelImage(io["resize\(i).in"]!).resized(width: size[0], height: size[1], filter: filter, reducingGap: gap)
            let got = Tensor(shape: [out.height, out.width, out.channels], values: out.pixels.map(Float.init))
            assertClose(got, io["resize\(i).out"]!, "resize case \(i) (\(filter), gap \(gap.map { "\($0)" } ?? "None"), to \(size))", relTol: 0)
        }
    }

    func testPillowResizeOf16BitGreyIsBitExact() throws {
        let io = try Fixtures.tensors("wide")
        let cases = try Fixtures.json("wide.json") as! [[String: Any]]
        for (i, c) in cases.enumerated() {
            let size = c["size"] as! [Int]
            let filter = ResampleFilter(rawValue: c["filter"] as! Int)!
            let source = io["resize\(i).in"]!
            let sourceSamples = source.array.map { UInt16($0) }
            let image = PixelImage(width: source.dim(1), height: source.dim(0), wideSamples: sourceSamples)
            let out = image.resized(width: size[0], height: size[1], filter: filter)
            let samples = try XCTUnwrap(out.wideSamples, "16-bit resize case \(i) lost its 16 bits")
            let got = Tensor(shape: [out.height, out.width], values: samples.map(Float.init))
            assertClose(got, io["resize\(i).out"]!, "16-bit resize case \(i) (\(filter), to \(size))", relTol: 0)
            XCTAssertEqual(out.pixels, samples.map { UInt8($0 >> 8) }, "16-bit resize case \(i): 8-bit view")
        }
    }

    func testCLIPImageProcessorIsBitExact() throws {
        let io = try Fixtures.tensors("images")
        let proc = CLIPImageProcessor()
        for i in 0..<5 {
            assertClose(proc(pixelImage(io["clip\(i).in"]!)), io["clip\(i).out"]!, "clip pixel_values case \(i)", relTol: 0)
        }
        // Transparent input: composited onto white before anything else.
        assertClose(proc(pixelImage(io["clip_rgba.in"]!)), io["clip_rgba.out"]!, "clip pixel_values of RGBA", relTol: 0)
    }

    func testGreyConversionMatchesPillow() throws {
        let io = try Fixtures.tensors("images")
        let grey = pixelImage(io["clip_rgba.in"]!).rgb().grey()
        assertClose(Tensor(shape: [grey.height, grey.width], values: grey.pixels.map(Float.init)), io["grey.out"]!, "convert(L)", relTol: 0)
    }
}
