// Every image format the CLI accepts decodes as Pillow decodes it (grey keeps 1 channel, palettes become RGB,
// 16-bit keeps the high byte, CMYK JPEGs convert as Pillow's convert("RGB")); outputs round-trip.
import Checkpoint
import Foundation
import ImageIO
import ImageProcessing
import PluginHost
import PluginSchema
import XCTest

final class ImageFileTests: XCTestCase {
    func testFormatsMatchPillow() throws {
        let f = try SafetensorsFile(path: Product.fixtures + "/formats.safetensors")
        XCTAssertEqual(f.entries.count, 10)
        for (name, entry) in f.entries.sorted(by: { $0.key < $1.key }) {
            let expected = f.load(entry)
            let img = try ImageFiles.read(Product.fixtures + "/formats/" + name)
            XCTAssertEqual([img.height, img.width, img.channels], expected.shape, name)
            guard [img.height, img.width, img.channels] == expected.shape else { continue }
            let diffs = zip(img.pixels, expected.array).map { abs(Int($0) - Int($1)) }
            // JPEG: libjpeg-turbo on both sides; PNG: lossless.
            XCTAssertEqual(
                diffs.max() ?? 0, 0,
                "\(name): worst difference \(diffs.max() ?? 0) at value \(diffs.firstIndex(of: diffs.max() ?? 0) ?? 0)")
        }
    }

    func testWritesAreAtomicAndRoundTrip() throws {
        let dir = try Product.tempDir()
        let img = try ImageFiles.read(Product.input("picture.png"))
        try ImageFiles.write(img, to: dir + "/a.png", text: [("kandinsky:seed", "42")])
        XCTAssertEqual(try ImageFiles.read(dir + "/a.png"), img)
        let png = try String(decoding: Data(contentsOf: URL(fileURLWithPath: dir + "/a.png")), as: UTF8.self)
        XCTAssertTrue(png.contains("kandinsky:seed\u{0}42"))
        try ImageFiles.write(img, to: dir + "/a.jpg")
        XCTAssertEqual(try ImageFiles.read(dir + "/a.jpg").width, img.width)
        XCTAssertThrowsError(try ImageFiles.write(img, to: dir + "/a.gif"))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["a.jpg", "a.png"],
            "no temporary files left")
    }

    /// PNG text is Latin-1 (tEXt) where the value allows it, UTF-8 in an iTXt chunk where it does not (PNG spec
    /// 11.3.4), so a Cyrillic prompt reads back as written.
    func testNonLatin1MetadataGoesIntoITXt() throws {
        let dir = try Product.tempDir()
        let img = try ImageFiles.read(Product.input("picture.png"))
        try ImageFiles.write(
            img, to: dir + "/t.png",
            text: [
                ("kandinsky:prompt", "кот в шляпе"),
                ("kandinsky:negative_prompt", "café"),
            ])
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/t.png"))
        let itxt = Data("iTXt".utf8) + Data("kandinsky:prompt".utf8) + Data([0, 0, 0, 0, 0])
            + Data("кот в шляпе".utf8)
        XCTAssertNotNil(png.range(of: itxt), "the Cyrillic prompt as an iTXt chunk in UTF-8")
        let text =
            Data("tEXt".utf8) + Data("kandinsky:negative_prompt".utf8) + Data([0]) + Data([0x63, 0x61, 0x66, 0xE9])
        XCTAssertNotNil(png.range(of: text), "café as a tEXt chunk in Latin-1 (é = 0xE9)")
    }

    /// An output that replaces an existing file keeps that file's permission bits (a 0600 file stays 0600).
    func testReplacingAFileKeepsItsMode() throws {
        let dir = try Product.tempDir()
        let img = try ImageFiles.read(Product.input("picture.png"))
        let path = dir + "/private.png"
        try ImageFiles.write(img, to: path)
        XCTAssertEqual(chmod(path, 0o600), 0)
        try ImageFiles.write(img, to: path)
        let mode = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        XCTAssertEqual(String(mode, radix: 8), "600", "mode of the replaced output")
    }

    /// seed -1 draws a seed: the CLI prints it, the PNG records it, and passing it back reproduces the image.
    func testRandomSeedIsPrintedRecordedAndReproduces() throws {
        try Product.requirePlugins()
        let dir = try Product.tempDir()
        let common = [
            "run", "text2img", "--precision", "fp32", "--prompt", "a kite", "--num-inference-steps", "2",
            "--prior-num-inference-steps", "2", "--scheduler", "unipc",
        ]
        let first = try Product.cli(common + ["--seed", "-1", "-o", dir + "/random.png"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let seedLine = first.stderr.split(separator: "\n").first { $0.hasPrefix("seed: ") }
        let printed = seedLine.map { String($0.dropFirst(6)) }
        let seed = try XCTUnwrap(printed.flatMap { Int($0) }, "no 'seed: N' line in: \(first.stderr)")
        XCTAssertTrue((0...Int(maxRandomSeed)).contains(seed), "seed \(seed)")
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/random.png"))
        XCTAssertNotNil(png.range(of: Data("kandinsky:seed\u{0}\(seed)".utf8)), "the PNG does not record seed \(seed)")
        let again = try Product.cli(common + ["--seed", "\(seed)", "-o", dir + "/again.png"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let a = try ImageFiles.read(dir + "/random.png")
        let b = try ImageFiles.read(dir + "/again.png")
        XCTAssertEqual(a.pixels, b.pixels, "seed \(seed) passed back does not reproduce the image")
    }
}
