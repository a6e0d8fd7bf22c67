// Every kind of bad input: a one-line error naming the file or parameter, a non-zero exit, and no output file
// (an existing one survives).
import Checkpoint
import Foundation
import ImageIO
import ImageProcessing
import XCTest

final class BadInputTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        try Product.requirePlugins()
        dir = try Product.tempDir()
    }

    let fast = [
        "--seed", "1", "--num-inference-steps", "2", "--prior-num-inference-steps", "2", "--width", "64", "--height",
        "64",
    ]

    /// Runs the CLI, expects failure with `fragment` in the error, and no file at `output`.
    func expectFailure(_ args: [String], _ fragment: String, output: String = "out.png", line: UInt = #line) throws {
        let r = try Product.cli(
            args + (args.contains("-o") || args.first == "workflow" ? [] : ["-o", output]), cwd: dir)
        XCTAssertNotEqual(r.status, 0, "exit status for \(args)", line: line)
        XCTAssertTrue(r.stderr.contains(fragment), "stderr should contain '\(fragment)':\n\(r.stderr)", line: line)
        if r.stderr.contains("Error:") {
            let errorLines = r.stderr.split(separator: "\n").filter { $0.contains("Error:") }
            XCTAssertEqual(errorLines.count, 1, "one error line: \(r.stderr)", line: line)
        }
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: dir + "/" + output), "\(output) must not be written", line: line)
    }

    func testMissingCorruptTruncatedAndNonImageFiles() throws {
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "nope.png"] + fast, "nope.png: file not found")
        var junk = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        junk.append(Data((0..<200).map { UInt8($0 & 0xff) }))
        try junk.write(to: URL(fileURLWithPath: dir + "/corrupt.png"))
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "corrupt.png"] + fast, "corrupt.png: cannot decode image")
        let png = try Data(contentsOf: URL(fileURLWithPath: Product.input("picture.png")))
        try png.prefix(png.count / 2).write(to: URL(fileURLWithPath: dir + "/truncated.png"))
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "truncated.png"] + fast, "truncated.png: cannot decode image"
        )
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: URL(fileURLWithPath: dir + "/truncated.jpg"))
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "truncated.jpg"] + fast, "truncated.jpg: cannot decode image"
        )
        try "hello".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "notes.txt"] + fast, "notes.txt: not a PNG or JPEG file")
        FileManager.default.createFile(atPath: dir + "/empty.png", contents: Data())
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "empty.png"] + fast,
            "empty.png: cannot decode image: the file is empty")
    }

    func testBadNumbers() throws {
        let base = [
            "run", "text2img", "--prompt", "x", "--seed", "1", "--prior-num-inference-steps", "2", "--width", "64",
            "--height", "64",
        ]
        try expectFailure(
            base + ["--num-inference-steps", "abc"], "parameter num_inference_steps = 'abc': expected a whole number")
        try expectFailure(
            base + ["--num-inference-steps", "0"], "parameter num_inference_steps = '0': must be between 1 and 1000")
        try expectFailure(base + ["--num-inference-steps", "-5"], "must be between 1 and 1000")
        try expectFailure(
            base + ["--num-inference-steps", "2", "--guidance-scale", "nan"],
            "parameter guidance_scale = 'nan': expected a finite number")
        try expectFailure(
            base + ["--num-inference-steps", "2", "--guidance-scale", "-1"],
            "parameter guidance_scale = '-1': must be between 0 and 100")
        try expectFailure(
            ["run", "text2img", "--prompt", "x", "--width", "100000"],
            "parameter width = '100000': must be between 64 and 4096")
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", Product.input("picture.png"), "--strength", "1.5"] + fast,
            "parameter strength = '1.5': must be between 0 and 1")
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", Product.input("picture.png"), "--strength", "0.1"] + fast,
            "leaves no denoising step")
    }

    func testWeights() throws {
        let fusion =
            [
                "run", "fusion", "--prompt", "x", "--image1", Product.input("picture.png"), "--image2",
                Product.input("picture2.png"),
            ] + fast
        try expectFailure(
            fusion + ["--weights", "[0.5, 0.5]"], "weights has 2 values for 3 items (prompt, image1, image2)")
        try expectFailure(
            fusion + ["--weights", "__import__('os').system('touch pwned')"], "expected a JSON list of numbers")
        try expectFailure(fusion + ["--weights", "[0.5, \"a\", 0.2]"], "every element must be a number")
        try expectFailure(fusion + ["--weights", "[]"], "the list is empty")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/pwned"))
    }

    func testMissingInputsUnknownNamesAndOutputs() throws {
        try expectFailure(
            ["run", "inpaint", "--prompt", "x", "--image", Product.input("picture.png")] + fast,
            "inpaint needs the input 'mask'")
        try expectFailure(["run", "text2img"] + fast, "text2img needs the parameter 'prompt'")
        try expectFailure(
            ["run", "text2img", "--prompt", "x", "--guidance", "4"] + fast,
            "unknown parameter 'guidance' for text2img; did you mean 'guidance_scale'?")
        try expectFailure(
            ["run", "text2imgg", "--prompt", "x"], "unknown plugin 'text2imgg'; did you mean 'text2img'?")
        try expectFailure(
            ["run", "text2img", "--prompt", "x"] + fast, "out.bmp: output must end in .png, .jpg or .jpeg",
            output: "out.bmp")
        try expectFailure(
            ["run", "text2img", "--prompt", "x"] + fast + ["-o", "no/such/dir/out.png"], "folder",
            output: "no/such/dir/out.png")
    }

    func testBadModelFolders() throws {
        try FileManager.default.createDirectory(atPath: dir + "/empty_model", withIntermediateDirectories: true)
        try expectFailure(
            ["run", "text2img", "--prompt", "x", "--model-name", "empty_model"] + fast, "config.json: file not found")
        try expectFailure(
            ["run", "text2img", "--prompt", "x", "--model-name", "someorg/missing-model"] + fast,
            "model 'someorg/missing-model' is not in the local Hugging Face cache")
        // A copy of the decoder with its UNet weights cut in half.
        let broken = dir + "/broken"
        try FileManager.default.copyItem(atPath: Product.model("pipe_decoder"), toPath: broken)
        let w = broken + "/unet/diffusion_pytorch_model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: w))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: w))
        try expectFailure(
            ["run", "text2img", "--prompt", "x", "--model-name", "broken"] + fast,
            "unet/diffusion_pytorch_model.safetensors: not a valid safetensors file")
        // Header length pointing past the end of the file.
        var header = Data(count: 8)
        header.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(1_000_000).littleEndian, as: UInt64.self) }
        try (header + Data("{}".utf8)).write(to: URL(fileURLWithPath: w))
        try expectFailure(["run", "text2img", "--prompt", "x", "--model-name", "broken"] + fast, "runs past the end")
        // The wrong kind of decoder for the task.
        try expectFailure(
            [
                "run", "inpaint", "--prompt", "x", "--image", Product.input("picture.png"), "--mask",
                Product.input("mask.png"),
                "--model-name", Product.model("pipe_decoder"),
            ] + fast, "is not an inpainting decoder")
    }

    /// Config values that would divide by zero, loop a negative count or produce NaN are refused when the config is
    /// read, with the file, the key, the value and the allowed range.
    func testConfigValuesOutsideTheirRangesAreRefused() throws {
        let cases: [(model: String, file: String, key: String, value: Any, message: String)] = [
            (
                "pipe_decoder", "unet/config.json", "norm_num_groups", 0,
                "norm_num_groups = 0 is outside the allowed range [1, 1024]"
            ),
            (
                "pipe_decoder", "unet/config.json", "attention_head_dim", -8,
                "attention_head_dim = -8 is outside the allowed range"
            ),
            (
                "pipe_decoder", "unet/config.json", "layers_per_block", -1,
                "layers_per_block = -1 is outside the allowed range"
            ),
            ("pipe_decoder", "unet/config.json", "norm_eps", -1e-5, "norm_eps = -1e-05 is outside the allowed range"),
            (
                "pipe_decoder", "movq/config.json", "norm_num_groups", 0,
                "norm_num_groups = 0 is outside the allowed range"
            ),
            (
                "pipe_decoder", "scheduler/scheduler_config.json", "num_train_timesteps", -5,
                "num_train_timesteps = -5 is outside the allowed range [1, 1000000]"
            ),
            (
                "pipe_decoder", "scheduler/scheduler_config.json", "beta_start", 2,
                "beta_start = 2.0 is outside the allowed range"
            ),
            (
                "pipe_prior", "prior/config.json", "num_attention_heads", 0,
                "num_attention_heads = 0 is outside the allowed range"
            ),
            (
                "pipe_prior", "text_encoder/config.json", "num_attention_heads", 0,
                "num_attention_heads = 0 is outside the allowed range"
            ),
        ]
        for (n, c) in cases.enumerated() {
            let copy = dir + "/model\(n)"
            try FileManager.default.copyItem(atPath: Product.model(c.model), toPath: copy)
            // The fixture prior's tokenizer is a relative link to a shared folder: point the copy's at the same place.
            for entry in try FileManager.default.contentsOfDirectory(atPath: copy) {
                let original = Product.model(c.model) + "/" + entry
                guard (try? FileManager.default.destinationOfSymbolicLink(atPath: original)) != nil else { continue }
                try FileManager.default.removeItem(atPath: copy + "/" + entry)
                try FileManager.default.createSymbolicLink(
                    atPath: copy + "/" + entry,
                    withDestinationPath: URL(fileURLWithPath: original).resolvingSymlinksInPath().path)
            }
            let config = copy + "/" + c.file
            var values = try XCTUnwrap(
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any])
            values[c.key] = c.value
            try JSONSerialization.data(withJSONObject: values).write(to: URL(fileURLWithPath: config))
            let option = c.model == "pipe_prior" ? "--prior-model-name" : "--model-name"
            try expectFailure(
                ["run", "text2img", "--prompt", "x", option, copy] + fast, "\(c.file): invalid config: \(c.message)")
        }
    }

    /// A model's kandinsky_defaults.json is held to the parameters' declared ranges: a default width of 100000 is
    /// refused before anything is allocated for it.
    func testModelDefaultsOutsideTheParameterRangesAreRefused() throws {
        let copy = dir + "/wide_decoder"
        try FileManager.default.copyItem(atPath: Product.model("pipe_decoder"), toPath: copy)
        let defaults = copy + "/kandinsky_defaults.json"
        var values = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: defaults))) as? [String: Any])
        values["width"] = 100000
        try JSONSerialization.data(withJSONObject: values).write(to: URL(fileURLWithPath: defaults))
        try expectFailure(["run", "text2img", "--prompt", "x", "--model-name", copy, "--seed", "1",
                           "--num-inference-steps", "2", "--prior-num-inference-steps", "2"],
                          "the model's default width 100000 (its kandinsky_defaults.json) is outside [64, 4096]")
        // A value past the ABI's int32 fields is refused where the file is read (it trapped in the conversion).
        values["width"] = 512
        values["height"] = 5e15
        try JSONSerialization.data(withJSONObject: values).write(to: URL(fileURLWithPath: defaults))
        try expectFailure(["run", "text2img", "--prompt", "x", "--model-name", copy, "--seed", "1",
                           "--num-inference-steps", "2", "--prior-num-inference-steps", "2"],
                          "height = 5000000000000000 is outside the allowed range [1, 2147483647]")
    }

    /// Pillow's two tiers: an input above half the pixel limit is used with a warning naming it; above the limit it
    /// is refused (the limit lowered here to 2000 pixels through KANDINSKY_MAX_IMAGE_PIXELS).
    func testLargeInputsWarnAndLargerOnesAreRefused() throws {
        let env = ["KANDINSKY_MAX_IMAGE_PIXELS": "2000"]
        for (name, width) in [("warn.png", 48), ("refuse.png", 64)] {
            let image = PixelImage(width: width, height: 32, channels: 3,
                                   pixels: [UInt8](repeating: 90, count: width * 32 * 3))
            try ImageFiles.write(image, to: dir + "/" + name)
        }
        let args = ["run", "img2img", "--prompt", "x", "--seed", "1", "--num-inference-steps", "4", "--strength", "0.5",
                    "--prior-num-inference-steps", "2", "--width", "64", "--height", "64"]
        let warned = try Product.cli(args + ["--image", "warn.png", "-o", "a.png"], cwd: dir, environment: env)
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stderr.contains("warning: warn.png has 1536 pixels (48x32), more than 1000"),
                      "the warning tier: \(warned.stderr)")
        let refused = try Product.cli(args + ["--image", "refuse.png", "-o", "b.png"], cwd: dir, environment: env)
        XCTAssertNotEqual(refused.status, 0, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("refuse.png"), "the error tier names the file: \(refused.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b.png"), "no output from a refused input")
    }

    /// outpaint sizes its canvas from the input: a 4096-pixel-wide picture plus its border is refused, as a width
    /// past 4096 is for every other plugin, before any model work.
    func testOutpaintCanvasObeysTheSizeLimit() throws {
        let wide = PixelImage(width: 4096, height: 8, channels: 3, pixels: [UInt8](repeating: 128, count: 4096 * 8 * 3))
        try ImageFiles.write(wide, to: dir + "/wide.png")
        try expectFailure(
            [
                "run", "outpaint", "--prompt", "x", "--image", dir + "/wide.png", "--border", "64",
                "--seed", "1", "--num-inference-steps", "2", "--prior-num-inference-steps", "2",
            ],
            "the image plus the border) is larger than 4096 on a side")
    }

    /// A value echoed in an error cannot drive the terminal: its control characters come back escaped.
    func testControlCharactersInMessagesAreEscaped() throws {
        let r = try Product.cli(["run", "no\u{1B}[31mred\u{7}", "-o", "out.png"], cwd: dir)
        XCTAssertNotEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("unknown plugin 'no\\x1b[31mred\\x07'"), "escaped plugin name: \(r.stderr)")
        XCTAssertFalse(r.stderr.contains("\u{1B}") || r.stderr.contains("\u{7}"), "raw control bytes: \(r.stderr)")
    }

    func testFailedRunKeepsAnExistingOutput() throws {
        let original = Data("previous result".utf8)
        try original.write(to: URL(fileURLWithPath: dir + "/keep.png"))
        let r = try Product.cli(
            ["run", "img2img", "--prompt", "x", "--image", "nope.png", "-o", "keep.png"] + fast, cwd: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/keep.png")), original)
    }

    func testWorkflowRunsEveryTaskAndReportsFailures() throws {
        let wf = """
            {"tasks": [
              {"task": "infer_kandinsky_2", "parameters": {"prompt": "a cat", "seed": "11", "num_inference_steps": 2, "prior_num_inference_steps": "2",
               "width": 64, "height": 64, "scheduler": "dpmsolver++"}, "output": "a.png"},
              {"task": "text2img", "parameters": {"prompt": "a cat", "seed": 1, "num_inference_steps": 2,
               "prior_num_inference_steps": 2, "scheduler": "euler"}, "output": "e.png"},
              {"task": "no_such_task", "parameters": {}, "output": "b.png"},
              {"task": "inpaint", "parameters": {"prompt": "a hat", "seed": 3, "num_inference_steps": 2, "prior_num_inference_steps": 2, "width": 64,
               "height": 64}, "inputs": {"image": "missing.png", "mask": "\(Product.input("mask.png"))"}, "output": "c.png"},
              {"task": "infer_kandinsky_2_image_mixing", "parameters": {"prompt": "a tree", "seed": 5, "num_inference_steps": 2,
               "prior_num_inference_steps": 2, "width": 64, "height": 64, "weights": [0.3, 0.3, 0.4]},
               "inputs": {"image1": "\(Product.input("picture.png"))", "image2": "\(Product.input("picture2.png"))"}, "output": "d.png"}
            ]}
            """
        try wf.write(toFile: dir + "/wf.json", atomically: true, encoding: .utf8)
        let r = try Product.cli(["workflow", dir + "/wf.json"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/a.png"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/d.png"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/c.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/e.png"))
        let unknownScheduler = "unknown scheduler 'euler' (choose one of ddpm, ddim, dpmsolver++, unipc)"
        XCTAssertTrue(r.stderr.contains(unknownScheduler), r.stderr)
        XCTAssertTrue(r.stderr.contains("wf.json task 3: unknown plugin 'no_such_task'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("missing.png: file not found"), r.stderr)
        // The prior loaded once for the three tasks that ran it.
        XCTAssertEqual(r.stderr.components(separatedBy: "loading prior").count - 1, 1, r.stderr)
    }

    func testMaxMemoryDropsModelsBetweenTasks() throws {
        let task =
            #"{"task": "text2img", "parameters": {"prompt": "a cat", "seed": 1, "num_inference_steps": 2, "prior_num_inference_steps": 2}, "output": "OUT"}"#
        let wf =
            "{\"tasks\": [" + task.replacingOccurrences(of: "OUT", with: "a.png") + ", "
            + task.replacingOccurrences(of: "OUT", with: "b.png") + "]}"
        try wf.write(toFile: dir + "/wf.json", atomically: true, encoding: .utf8)
        let unlimited = try Product.cli(["workflow", dir + "/wf.json"])
        XCTAssertEqual(unlimited.stderr.components(separatedBy: "loading prior").count - 1, 1, unlimited.stderr)
        let tight = try Product.cli(["workflow", "--max-memory", "1M", dir + "/wf.json"])
        XCTAssertEqual(tight.status, 0, tight.stderr)
        XCTAssertEqual(tight.stderr.components(separatedBy: "loading prior").count - 1, 2, tight.stderr)
        XCTAssertTrue(tight.stderr.contains("(--max-memory)"), tight.stderr)
        try expectFailure(
            ["workflow", "--max-memory", "lots", dir + "/wf.json"],
            "--max-memory 'lots': expected a size such as 12G or 800M")
    }

    func testBrokenWorkflowFiles() throws {
        try "{\"tasks\": 3}".write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        try expectFailure(["workflow", dir + "/bad.json"], "bad.json: needs a \"tasks\" list")
        try "not json".write(toFile: dir + "/bad2.json", atomically: true, encoding: .utf8)
        try expectFailure(["workflow", dir + "/bad2.json"], "bad2.json: not a JSON object")
        try expectFailure(["workflow", dir + "/none.json"], "none.json: file not found")
        try #"{"tasks": []}"#.write(toFile: dir + "/empty.json", atomically: true, encoding: .utf8)
        try expectFailure(["workflow", dir + "/empty.json"], "empty.json: the \"tasks\" list is empty")
        let twice =
            #"{"tasks": [{"task": "text2img", "parameters": {"prompt": "a"}, "output": "same.png"}, "#
            + #"{"task": "text2img", "parameters": {"prompt": "b"}, "output": "./same.png"}]}"#
        try twice.write(toFile: dir + "/twice.json", atomically: true, encoding: .utf8)
        try expectFailure(
            ["workflow", dir + "/twice.json"], "twice.json: tasks 1 and 2 both write ./same.png",
            output: "same.png")
        try expectFailure(
            ["workflow", "--max-memory", "1e30G", dir + "/twice.json"],
            "--max-memory '1e30G': larger than any machine's memory")
        // Decoded strictly: misspelt keys are named, syntax errors located, wrong types placed.
        let strict: [(String, String)] = [
            (
                #"{"tasks": [{"task": "text2img", "output": "a.png"}], "taks": 1}"#,
                "unknown key 'taks' (known: tasks)"
            ),
            (
                #"{"tasks": [{"task": "text2img", "outptu": "a.png", "output": "b.png"}]}"#,
                "task 1: unknown key 'outptu' (known: inputs, output, parameters, task)"
            ),
            (
                "{\"tasks\": [\n  {\"task\": \"text2img\",\n   \"output\": x}]}",
                "not a JSON object: invalid JSON at line 3, column 14"
            ),
            (
                #"{"tasks": [{"task": "text2img", "output": "a.png"}, {"task": 7, "output": "b.png"}]}"#,
                "task 2: task: expected a string"
            ),
            (
                #"{"tasks": [{"task": "text2img", "output": "a.png", "parameters": {"seed": {"x": 1}}}]}"#,
                "task 1: parameters: seed: expected a string, a number, true/false or a list of numbers"
            ),
        ]
        for (n, (text, message)) in strict.enumerated() {
            try text.write(toFile: dir + "/strict\(n).json", atomically: true, encoding: .utf8)
            try expectFailure(["workflow", dir + "/strict\(n).json"], "strict\(n).json: \(message)", output: "a.png")
        }
    }

    /// A copy of the fixture decoder with the first value of one weight set to NaN.
    func decoderWithNaN(in component: String, key: String) throws -> String {
        let folder = dir + "/broken-\(component)"
        try FileManager.default.copyItem(atPath: Product.model("pipe_decoder"), toPath: folder)
        let path = folder + "/\(component)/diffusion_pytorch_model.safetensors"
        let entry = try XCTUnwrap(try SafetensorsFile(path: path).entries[key], "\(path) has no \(key)")
        let nan: [UInt8] = entry.dtype == .f16 ? [0x00, 0x7E] : [0x00, 0x00, 0xC0, 0x7F]
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: UInt64(entry.offset))
        try handle.write(contentsOf: Data(nan))
        try handle.close()
        return folder
    }

    /// NaN from broken weights is reported where it appears, as a message and a non-zero exit, not a trap.
    func testNaNFromBrokenWeightsIsReportedNotTrapped() throws {
        try expectFailure(
            [
                "run", "text2img", "--prompt", "x", "--precision", "fp32",
                "--model-name", try decoderWithNaN(in: "unet", key: "conv_in.weight"),
            ] + fast,
            "the model produced NaN or infinity at decoder step 1 of 2")
        try expectFailure(
            [
                "run", "text2img", "--prompt", "x", "--precision", "fp32",
                "--model-name", try decoderWithNaN(in: "movq", key: "decoder.conv_out.weight"),
            ] + fast,
            "the MoVQ decoder produced NaN or infinity")
    }

    /// A PNG's chunk CRC (ISO 3309), so the test can write a header that libpng accepts.
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// Inputs declaring more pixels than the limit are refused from their header, before any pixel is decoded.
    func testDecompressionBombsAreRefusedFromTheHeader() throws {
        func bigEndian(_ v: UInt32) -> [UInt8] {
            [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        // 100000 x 100000 RGB, 8 bits: a 69-byte file that would ask for 30 GB.
        let ihdr: [UInt8] = Array("IHDR".utf8) + bigEndian(100_000) + bigEndian(100_000) + [8, 2, 0, 0, 0]
        let idat: [UInt8] = Array("IDAT".utf8)
        let iend: [UInt8] = Array("IEND".utf8)
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += bigEndian(13) + ihdr + bigEndian(crc32(ihdr))
        png += bigEndian(0) + idat + bigEndian(crc32(idat)) + bigEndian(0) + iend + bigEndian(crc32(iend))
        try Data(png).write(to: URL(fileURLWithPath: dir + "/bomb.png"))
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "bomb.png"] + fast,
            "bomb.png: 100000x100000 pixels exceed the limit of 178956970")
        // A small JPEG whose frame header is rewritten to 60000 x 60000.
        try ImageFiles.write(PixelImage(width: 8, height: 8, channels: 3), to: dir + "/small.jpg")
        var jpeg = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/small.jpg")))
        let sofMarker = (0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 }
        let sof = try XCTUnwrap(sofMarker, "no SOF0 marker")
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        try Data(jpeg).write(to: URL(fileURLWithPath: dir + "/bomb.jpg"))
        try expectFailure(
            ["run", "img2img", "--prompt", "x", "--image", "bomb.jpg"] + fast,
            "bomb.jpg: 60000x60000 pixels exceed the limit of 178956970")
    }
}
