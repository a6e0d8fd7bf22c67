// `kandinsky run PLUGIN ...`: one request from the command line.
import ArgumentParser
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import TensorCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one plugin.",
        discussion: """
        Every parameter of the plugin's schema is an option: --prompt "a cat", --guidance-scale 4 (or \
        --guidance_scale 4). Inputs are files: --image F, --mask F, --depth F, --image1 F --image2 F (fusion). \
        `kandinsky plugins` lists them all. The output (PNG or JPEG by extension) is written atomically; PNG text \
        metadata records every parameter and the seed used.

        Example: kandinsky run inpaint --image photo.png --mask mask.png --prompt "a red hat" --seed 7 -o out.png
        """)

    @Argument(help: "Plugin id or alias (see `kandinsky plugins`).") var plugin: String
    @Option(name: [.short, .customLong("output")], help: "Output file (.png, .jpg or .jpeg).") var output: String
    @Flag(name: .customLong("invert-mask"), help: "Swap the mask's meaning (black = repaint).") var invertMask = false
    @Flag(name: .customLong("quiet"), help: "No progress output.") var quiet = false
    @OptionGroup var compute: ComputeOptions
    @Argument(parsing: .allUnrecognized, help: "Schema parameters and inputs: --KEY VALUE ...") var rest: [String] = []

    func run() throws {
        let registry = try startHost(compute)
        guard let spec = registry.plugin(named: plugin) else {
            let names = registry.plugins.flatMap { [$0.id] + $0.aliases }
            throw CLIError("unknown plugin '\(plugin)'" + (closestName(plugin, in: names).map { "; did you mean '\($0)'?" } ?? "") +
                           (names.isEmpty ? " (no plugins found)" : " (known: \(registry.plugins.map(\.id).joined(separator: ", ")))"))
        }
        var params: [String: String] = [:]
        var inputs: [String: String] = [:]
        var i = 0
        while i < rest.count {
            let arg = rest[i]
            guard arg.hasPrefix("--"), arg.count > 2 else { throw CLIError("unexpected argument '\(arg)' (options look like --key value)") }
            var key = String(arg.dropFirst(2)).replacingOccurrences(of: "-", with: "_")
            var value: String
            if let eq = key.firstIndex(of: "=") {
                value = String(key[key.index(after: eq)...])
                key = String(key[..<eq])
            } else {
                guard i + 1 < rest.count else { throw CLIError("option --\(key) needs a value") }
                value = rest[i + 1]
                i += 1
            }
            i += 1
            let isInput = spec.inputs.contains { inp in key == inp.key || (inp.repeated && key.hasPrefix(inp.key) && Int(key.dropFirst(inp.key.count)) != nil) }
            if isInput { inputs[key] = value } else { params[key] = value }
        }
        if invertMask {
            guard spec.params.contains(where: { $0.key == "invert_mask" }) else { throw CLIError("\(spec.id) has no mask to invert") }
            params["invert_mask"] = "true"
        }
        let task = Task(spec: spec, params: params, inputs: inputs, output: output, baseFolder: FileManager.default.currentDirectoryPath)
        try task.execute(registry: registry, progress: quiet ? nil : ProgressDisplay())
    }
}

/// A request from any front end: resolves, reads the inputs, runs, writes the output atomically.
struct Task {
    let spec: PluginSpec
    let params: [String: String]
    let inputs: [String: String]
    let output: String
    let baseFolder: String

    func path(_ p: String) -> String {
        let expanded = (p as NSString).expandingTildeInPath
        return ((expanded.hasPrefix("/") ? expanded : (baseFolder as NSString).appendingPathComponent(expanded)) as NSString).standardizingPath
    }

    func execute(registry: PluginRegistry, progress: ProgressDisplay?) throws {
        let outPath = path(output)
        let ext = (outPath as NSString).pathExtension.lowercased()
        guard ["png", "jpg", "jpeg"].contains(ext) else { throw CLIError("\(output): output must end in .png, .jpg or .jpeg") }
        let outDir = (outPath as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: outDir, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("\(output): folder \(outDir) does not exist")
        }
        try spec.checkInputs(Array(inputs.keys))
        // Model references that name an existing folder relative to the base (the workflow file's folder) become
        // absolute; anything else stays a hub id or path for the model server to resolve.
        var params = self.params
        for p in spec.params where p.isModel {
            if let v = params[p.key], !v.isEmpty, FileManager.default.fileExists(atPath: path(v)) { params[p.key] = path(v) }
        }
        let values = try spec.resolve(params)
        var images: [String: PixelImage] = [:]
        for (k, f) in inputs { images[k] = try ImageFiles.read(path(f)) }
        if let seed = values["seed"], params["seed"].map({ Int($0.trimmingCharacters(in: .whitespaces)) == -1 }) ?? true {
            report("seed: \(seed)")
        }
        let started = Date()
        ServerABI.server?.onLoad = { msg in progress?.note(msg) }
        let image = try PluginRunner.run(RunRequest(plugin: spec, params: values, inputs: images), registry: registry,
                                         progress: { stage, step, total in progress?.update(stage: stage, step: step, total: total); return true },
                                         isCancelled: { Interrupt.requested })
        progress?.finish()
        var text: [(String, String)] = [("kandinsky:plugin", spec.id)]
        for (k, v) in values.sorted(by: { $0.key < $1.key }) { text.append(("kandinsky:\(k)", v.description)) }
        for (k, f) in inputs.sorted(by: { $0.key < $1.key }) { text.append(("kandinsky:input:\(k)", f)) }
        try ImageFiles.write(image, to: outPath, text: text)
        let seconds = Date().timeIntervalSince(started)
        report(String(format: "wrote %@ (%dx%d) in %.1f s", output, image.width, image.height, seconds))
        if Profile.enabled { report(Profile.report(wallSeconds: seconds)) }
    }
}
