// Shared set-up for the product tests: the built plugins and CLI (from `swift build -c release`, which the test
// command runs first), the fixture models, and one host per test process.
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import XCTest

/// A test's own set-up broke (a C plugin did not compile, a fixture lacks a key): thrown, so the test fails instead
/// of passing or skipping without having checked anything.
struct SetupError: Error, CustomStringConvertible {
    let description: String
}

enum Product {
    /// The build folder holding this test bundle, the plugin libraries and the kandinsky executable.
    static let buildDir: String = {
        let bundle = Bundle.main.bundlePath.hasSuffix(".xctest") ? Bundle.main.bundlePath : CommandLine.arguments[0]
        var url = URL(fileURLWithPath: bundle)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("kandinsky").path) {
            url.deleteLastPathComponent()
        }
        return url.path
    }()
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("EngineTests/Fixtures").path
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static func model(_ n: String) -> String { fixtures + "/models/" + n }
    static func input(_ n: String) -> String { fixtures + "/inputs/" + n }

    /// One registry and server for the whole test process, as in the real host.
    static let registry: PluginRegistry = {
        let r = PluginRegistry()
        r.load(directories: [buildDir])
        ServerABI.server = ModelServer(
            defaultPrior: model("pipe_prior"),
            defaultDecoders: [
                "text2img": model("pipe_decoder"), "inpaint": model("pipe_inpaint"),
                "controlnet": model("pipe_controlnet"),
            ], defaultDepthEstimator: model("depth_anything"))
        return r
    }()

    /// Runs `plugin` through dlopen and the C ABI with string parameters (validated by its schema) and input files.
    static func runPlugin(_ plugin: String, _ params: [String: String], inputFiles: [String: String]) throws
        -> PixelImage
    {
        try requirePlugins()
        let spec = try XCTUnwrap(registry.plugin(named: plugin))
        let images = try inputFiles.mapValues { try ImageFiles.read($0) }
        return try PluginRunner.run(
            RunRequest(plugin: spec, params: try spec.resolve(params), inputs: images), registry: registry)
    }

    static func requirePlugins(file: StaticString = #filePath, line: UInt = #line) throws {
        if registry.plugins.count < 6 {
            XCTFail(
                "expected 6 plugins in \(buildDir), found \(registry.plugins.map(\.id)); run `swift build -c release` "
                    + "first. Warnings: \(registry.warnings)",
                file: file, line: line)
            throw SetupError(description: "plugins not built in \(buildDir)")
        }
    }

    /// The header as this build ships it, and the frozen ABI 1.0 copy kept for compatibility tests.
    static let header = repo + "/Sources/KandinskyPluginABI/include"
    static let header10 = repo + "/Tests/ProductTests/ABI-1.0"

    /// Compiles a test C plugin against one header alone (the shipped one by default); `defines` as -D options.
    static func compileC(_ source: String, to dir: String, name: String, include: String = header,
                         defines: [String] = []) throws -> String {
        let out = (dir as NSString).appendingPathComponent(name)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["cc", "-std=c11", "-Wall", "-Werror", "-shared", "-fPIC", "-I", include]
            + defines.map { "-D" + $0 } + [source, "-o", out]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw SetupError(description: "cc failed (status \(p.terminationStatus)) on \(source)")
        }
        return out
    }

    struct CLIResult {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs the built kandinsky executable on the fixture models, or with `defaultModels` on whatever it finds itself
    /// (the embedded default model set).
    /// `launcher` runs the executable through another program (an emulator): launcher[0] with the rest as its options.
    /// `environment` adds or replaces variables (KANDINSKY_PLUGIN_PATH for test plugins).
    static func cli(_ args: [String], cwd: String? = nil, defaultModels: Bool = false, launcher: [String] = [],
                    environment: [String: String] = [:]) throws -> CLIResult
    {
        let p = Process()
        let executable = buildDir + "/kandinsky"
        p.executableURL = URL(fileURLWithPath: launcher.first ?? executable)
        p.arguments = launcher.isEmpty ? args : Array(launcher.dropFirst()) + [executable] + args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = NSTemporaryDirectory()
        env["KANDINSKY_PLUGIN_PATH"] = nil
        let fixtureModels = [
            "KANDINSKY_PRIOR": "pipe_prior", "KANDINSKY_DECODER": "pipe_decoder",
            "KANDINSKY_DECODER_INPAINT": "pipe_inpaint", "KANDINSKY_DECODER_CONTROLNET": "pipe_controlnet",
            "KANDINSKY_DEPTH_MODEL": "depth_anything",
        ]
        for (variable, name) in fixtureModels { env[variable] = defaultModels ? nil : model(name) }
        if defaultModels { env["KANDINSKY_DEFAULT_MODELS"] = nil }
        env.merge(environment) { $1 }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIResult(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    /// A command's exit status and its output (stdout and stderr together).
    static func command(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: Product.repo)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    static func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "kd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// The product's bar: uint8 within 2 levels on at least 99.5% of values, and no value more than 16 levels off.
func assertMatchesDiffusers(
    _ got: PixelImage, _ expected: [Float], height: Int, width: Int, _ name: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(
        [got.height, got.width, got.channels], [height, width, 3], "\(name): output size", file: file, line: line)
    guard got.pixels.count == expected.count else { return }
    let diffs = zip(got.pixels, expected).map { abs(Int($0) - Int(($1 * 255).rounded(.toNearestOrEven))) }
    let off = diffs.filter { $0 > 2 }.count
    let worst = diffs.indices.max { diffs[$0] < diffs[$1] } ?? 0
    let pixel = worst / 3
    XCTAssertLessThanOrEqual(
        Double(off), 0.005 * Double(diffs.count),
        "\(name): \(off) of \(diffs.count) values differ by more than 2 levels (worst \(diffs.max() ?? 0))",
        file: file, line: line)
    XCTAssertLessThanOrEqual(
        diffs.max() ?? 0, 16,
        "\(name): pixel (x \(pixel % width), y \(pixel / width)) channel \(worst % 3) is "
            + "\(diffs.max() ?? 0) levels off", file: file, line: line)
}
