// Inpainting that keeps what it should (issue 13): the mask rules in ImageProcessing/InpaintMask.swift against their
// definitions, the server's ABI 1.2 functions, and the inpaint plugin's keep_unmasked and inpaint_area "masked"
// on the tiny fixture models (diffusers parity with keep_unmasked off is PluginParityTests).
import Foundation
import ImageIO
import ImageProcessing
import KandinskyPluginABI
import ModelServer
import PluginHost
import TensorCore
import XCTest

final class InpaintingTests: XCTestCase {
    /// Reproducible pseudo-random bits (a 64-bit LCG) for the rule tests' masks.
    struct Bits {
        var state: UInt64
        mutating func next(_ below: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(below))
        }
    }

    /// A region of `blobs` random rectangles on width x height.
    func randomRegion(_ bits: inout Bits, width: Int, height: Int, blobs: Int) -> [Bool] {
        var region = [Bool](repeating: false, count: width * height)
        for _ in 0..<blobs {
            let (x, y) = (bits.next(width), bits.next(height))
            let (w, h) = (1 + bits.next(max(width / 3, 1)), 1 + bits.next(max(height / 3, 1)))
            for yy in y..<min(y + h, height) { for xx in x..<min(x + w, width) { region[yy * width + xx] = true } }
        }
        return region
    }

    /// The squared distance from (x, y) to the nearest target pixel, by looking at every pixel.
    func bruteSquaredDistance(_ targets: [Bool], width: Int, height: Int, x: Int, y: Int) -> Double {
        var best = Double.infinity
        for ty in 0..<height {
            for tx in 0..<width where targets[ty * width + tx] {
                best = min(best, Double((tx - x) * (tx - x) + (ty - y) * (ty - y)))
            }
        }
        return best
    }

    func testDistanceGrowAndSeamFollowTheirDefinitions() {
        var bits = Bits(state: 7)
        for (case_, (width, height)) in [(1, 1), (13, 7), (9, 20), (31, 17), (40, 40)].enumerated() {
            for blobs in [0, 1, 3] {
                let region = randomRegion(&bits, width: width, height: height, blobs: blobs)
                let distances = InpaintMask.squaredDistances(to: region, width: width, height: height)
                for y in 0..<height {
                    for x in 0..<width {
                        let want = bruteSquaredDistance(region, width: width, height: height, x: x, y: y)
                        XCTAssertEqual(
                            distances[y * width + x], want,
                            "case \(case_) (\(width)x\(height), \(blobs) blobs): distance at (\(x), \(y))")
                    }
                }
                for grow in [-3, -1, 1, 2, 5] {
                    let grown = InpaintMask.grown(region, width: width, height: height, by: grow)
                    let radius = Double(grow * grow)
                    for y in 0..<height {
                        for x in 0..<width {
                            let i = y * width + x
                            let want =
                                grow > 0
                                ? bruteSquaredDistance(region, width: width, height: height, x: x, y: y) <= radius
                                : region[i]
                                    && bruteSquaredDistance(
                                        region.map { !$0 }, width: width, height: height, x: x, y: y) > radius
                            XCTAssertEqual(grown[i], want, "case \(case_), grow \(grow): pixel (\(x), \(y))")
                        }
                    }
                }
                let weights = InpaintMask.blendWeights(region, width: width, height: height, blur: 4)
                for y in 0..<height {
                    for x in 0..<width {
                        let i = y * width + x
                        let toKept = bruteSquaredDistance(region.map { !$0 }, width: width, height: height, x: x, y: y)
                        let want: Float = region[i] ? Float(min(1, toKept.squareRoot() / 4)) : 0
                        XCTAssertEqual(weights[i], want, "case \(case_): seam weight at (\(x), \(y))")
                    }
                }
            }
        }
    }

    func testCropBoxContainsThePaddedMaskAtTheAskedAspect() {
        var bits = Bits(state: 11)
        for trial in 0..<300 {
            let (width, height) = (8 + bits.next(120), 8 + bits.next(120))
            let region = randomRegion(&bits, width: width, height: height, blobs: 1 + bits.next(2))
            let padding = bits.next(20)
            let (aspectWidth, aspectHeight) = ([64, 128, 96][bits.next(3)], [64, 128, 96][bits.next(3)])
            let where_ =
                "trial \(trial) (\(width)x\(height), padding \(padding), aspect \(aspectWidth):\(aspectHeight))"
            guard
                let box = InpaintMask.cropBox(
                    region, width: width, height: height, padding: padding, aspectWidth: aspectWidth,
                    aspectHeight: aspectHeight)
            else {
                XCTAssertFalse(region.contains(true), "\(where_): no box for a mask that repaints")
                continue
            }
            XCTAssertTrue(
                box.x >= 0 && box.y >= 0 && box.x + box.width <= width && box.y + box.height <= height,
                "\(where_): box \(box) leaves the picture")
            for y in 0..<height {
                for x in 0..<width where region[y * width + x] {
                    // Every repaint pixel and its padding (clamped to the picture) lie in the box.
                    let inside =
                        max(x - padding, 0) >= box.x && min(x + padding, width - 1) < box.x + box.width
                        && max(y - padding, 0) >= box.y && min(y + padding, height - 1) < box.y + box.height
                    XCTAssertTrue(inside, "\(where_): repaint pixel (\(x), \(y)) with its padding is outside \(box)")
                }
            }
            // The aspect is met to within the rounding of one side, unless the picture's side stopped it.
            let wide = Double(box.width) / Double(box.height)
            let asked = Double(aspectWidth) / Double(aspectHeight)
            let met = abs(wide - asked) <= asked / Double(min(box.width, box.height)) + 1e-9
            XCTAssertTrue(met || box.width == width || box.height == height, "\(where_): box \(box) has aspect \(wide)")
        }
        XCTAssertNil(
            InpaintMask.cropBox(
                [Bool](repeating: false, count: 16), width: 4, height: 4, padding: 2, aspectWidth: 1, aspectHeight: 1))
    }

    /// A 64x64 cut of the fixture picture and mask (the tiny decoder's natural size, so nothing is resized).
    func fixtureInputs() throws -> (picture: PixelImage, mask: PixelImage) {
        func cut(_ image: PixelImage) -> PixelImage {
            var out = PixelImage(width: 64, height: 60, channels: image.channels)
            for y in 0..<60 {
                for x in 0..<64 { for c in 0..<image.channels { out[x, y, c] = image[x + 8, y, c] } }
            }
            return out.resized(width: 64, height: 64, filter: .nearest)
        }
        return (
            cut(try ImageFiles.read(Product.input("picture.png"))), cut(try ImageFiles.read(Product.input("mask.png")))
        )
    }

    func runInpaint(_ inputs: [String: PixelImage], _ extra: [String: String]) throws -> PixelImage {
        try Product.requirePlugins()
        let spec = try XCTUnwrap(Product.registry.plugin(named: "inpaint"))
        var params = [
            "prompt": "a red hat", "seed": "4", "num_inference_steps": "3", "prior_num_inference_steps": "2",
            "guidance_scale": "4", "model_name": Product.model("pipe_inpaint"),
            "prior_model_name": Product.model("pipe_prior"),
        ]
        params.merge(extra) { $1 }
        return try PluginRunner.run(
            RunRequest(plugin: spec, params: try spec.resolve(params), inputs: inputs), registry: Product.registry)
    }

    func testKeepUnmaskedKeepsEveryUnmaskedByteAndFeathersInside() throws {
        let (picture, mask) = try fixtureInputs()
        let inputs = ["image": picture, "mask": mask]
        let region = InpaintMask.repaintRegion(of: mask, width: 64, height: 64, inverted: false)
        XCTAssertTrue(region.contains(true) && region.contains(false), "the fixture mask must repaint part only")
        let diffusers = try runInpaint(inputs, ["keep_unmasked": "false"])
        let hard = try runInpaint(inputs, ["mask_blur": "0"])
        let feathered = try runInpaint(inputs, [:])
        let weights = InpaintMask.blendWeights(region, width: 64, height: 64, blur: 4)
        var changedOutside = 0
        for i in 0..<(64 * 64) {
            for c in 0..<3 {
                let (x, y) = (i % 64, i / 64)
                let (input, generated) = (picture[x, y, c], diffusers[x, y, c])
                if !region[i] {
                    XCTAssertEqual(hard[x, y, c], input, "blur 0: kept pixel (\(x), \(y)) channel \(c) changed")
                    XCTAssertEqual(feathered[x, y, c], input, "blur 4: kept pixel (\(x), \(y)) channel \(c) changed")
                    if generated != input { changedOutside += 1 }
                    continue
                }
                XCTAssertEqual(hard[x, y, c], generated, "blur 0: repainted pixel (\(x), \(y)) is not the generated")
                if weights[i] == 1 {
                    XCTAssertEqual(feathered[x, y, c], generated, "blur 4: pixel (\(x), \(y)) deep in the mask")
                } else {
                    let value = feathered[x, y, c]
                    XCTAssertTrue(
                        value >= min(input, generated) && value <= max(input, generated),
                        "blur 4: seam pixel (\(x), \(y)) channel \(c) = \(value), not between \(input) and \(generated)"
                    )
                }
            }
        }
        // Without keep_unmasked the MoVQ round trip changes the unmasked part: the reason for the parameter.
        XCTAssertGreaterThan(changedOutside, 0, "diffusers' output kept every unmasked byte: the test proves nothing")
    }

    func testOutpaintKeepsThePicturesOwnPixels() throws {
        try Product.requirePlugins()
        let spec = try XCTUnwrap(Product.registry.plugin(named: "outpaint"))
        let picture = try ImageFiles.read(Product.input("picture.png"))
        let params = [
            "prompt": "a field", "border": "20", "seed": "3", "num_inference_steps": "3",
            "prior_num_inference_steps": "2", "model_name": Product.model("pipe_inpaint"),
            "prior_model_name": Product.model("pipe_prior"),
        ]
        let out = try PluginRunner.run(
            RunRequest(plugin: spec, params: try spec.resolve(params), inputs: ["image": picture]),
            registry: Product.registry)
        // The picture sits centred on the canvas (outpaint.c: the canvas is rounded up to a multiple of 64).
        let (left, top) = ((out.width - picture.width) / 2, (out.height - picture.height) / 2)
        var changed = 0
        for y in 0..<picture.height {
            for x in 0..<picture.width {
                for c in 0..<3 where out[x + left, y + top, c] != picture[x, y, c] { changed += 1 }
            }
        }
        XCTAssertEqual(
            changed, 0,
            "keep_unmasked: \(changed) values of the picture changed on the \(out.width)x\(out.height) canvas")
    }

    func testTheServerGrowsTheMaskAndRefusesBadArguments() throws {
        _ = Product.registry
        let (_, mask) = try fixtureInputs()
        let server = ServerABI.table.pointee
        let binary = InpaintMask.repaintRegion(of: mask, width: 64, height: 64, inverted: true)
        var pixels = mask.pixels
        try pixels.withUnsafeMutableBufferPointer { buffer in
            var image = kd_image_t(
                struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: 64, height: 64, channels: 1, row_bytes: 64,
                data: buffer.baseAddress, bits_per_sample: 8)
            for grow in [-4, 0, 6] {
                var keep: OpaquePointer?
                XCTAssertEqual(server.inpaint_mask(&image, 64, 64, true, Int32(grow), &keep), Int32(KD_OK))
                let tensor = try XCTUnwrap(keep.flatMap { Unmanaged<Tensor>.fromOpaque(UnsafeRawPointer($0)) })
                let want = InpaintMask.grown(binary, width: 64, height: 64, by: grow)
                let got = (0..<(64 * 64)).map { tensor.takeUnretainedValue().data[$0] == 0 }
                let wrong = zip(got, want).filter { $0 != $1 }.count
                XCTAssertEqual(wrong, 0, "inpaint_mask with grow \(grow): \(wrong) pixels differ from the rule")
                server.tensor_release(keep)
            }
            var keep: OpaquePointer?
            XCTAssertEqual(server.inpaint_mask(&image, 64, 64, false, 5000, &keep), Int32(KD_ERR_INVALID_ARGUMENT))
            XCTAssertEqual(server.inpaint_mask(&image, 0, 64, false, 0, &keep), Int32(KD_ERR_INVALID_ARGUMENT))
            XCTAssertNil(keep)
        }
        // A reducing gap below 1 is refused as Pillow refuses it (it overflowed the reduction factor).
        try pixels.withUnsafeMutableBufferPointer { buffer in
            var image = kd_image_t(
                struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: 64, height: 64, channels: 1, row_bytes: 64,
                data: buffer.baseAddress, bits_per_sample: 8)
            XCTAssertNil(server.image_resize(&image, 8, 8, kd_resample(KD_RESAMPLE_LANCZOS), 1e-300))
            let resized = try XCTUnwrap(server.image_resize(&image, 8, 8, kd_resample(KD_RESAMPLE_LANCZOS), 2))
            server.image_release(resized)
        }
    }

    func testInpaintOnlyTheMaskedAreaKeepsTheRestOfALargePicture() throws {
        // A picture four times the model's 64x64 with a small mask: the output keeps the picture's size.
        let picture = try ImageFiles.read(Product.input("picture.png")).resized(
            width: 256, height: 256, filter: .bicubic)
        var mask = PixelImage(width: 256, height: 256, channels: 1)
        for y in 150..<180 { for x in 40..<76 { mask[x, y, 0] = 255 } }
        let inputs = ["image": picture, "mask": mask]
        let region = InpaintMask.repaintRegion(of: mask, width: 256, height: 256, inverted: false)
        let box = try XCTUnwrap(
            InpaintMask.cropBox(region, width: 256, height: 256, padding: 32, aspectWidth: 64, aspectHeight: 64))
        let whole = try runInpaint(inputs, ["inpaint_area": "masked", "keep_unmasked": "false"])
        let kept = try runInpaint(inputs, ["inpaint_area": "masked"])
        XCTAssertEqual([whole.width, whole.height], [256, 256])
        var changedInBox = 0
        for y in 0..<256 {
            for x in 0..<256 {
                let inBox = x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height
                for c in 0..<3 {
                    if !inBox {
                        XCTAssertEqual(whole[x, y, c], picture[x, y, c], "pixel (\(x), \(y)) outside the crop \(box)")
                    } else if whole[x, y, c] != picture[x, y, c] {
                        changedInBox += 1
                    }
                    if !region[y * 256 + x] {
                        XCTAssertEqual(kept[x, y, c], picture[x, y, c], "keep_unmasked: pixel (\(x), \(y)) changed")
                    }
                }
            }
        }
        XCTAssertGreaterThan(changedInBox, 0, "the crop \(box) came back unchanged")
        var empty = mask
        empty.pixels = [UInt8](repeating: 0, count: empty.pixels.count)
        XCTAssertThrowsError(try runInpaint(["image": picture, "mask": empty], ["inpaint_area": "masked"])) { e in
            XCTAssertTrue("\(e)".contains("the mask marks nothing to repaint"), "\(e)")
        }
        XCTAssertThrowsError(try runInpaint(inputs, ["inpaint_area": "box"])) { e in
            XCTAssertTrue("\(e)".contains("inpaint_area 'box': expected whole or masked"), "\(e)")
        }
    }
}
