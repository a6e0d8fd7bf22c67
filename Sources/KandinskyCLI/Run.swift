// `kandinsky run PLUGIN ...`: one request from the command line.
import ArgumentParser
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import PluginSchema
import Supervisor
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
        _ = try compute.resolved()
        // Which keys are inputs the worker decides, from the plugin's schema (splitInputs).
        var params: [String: String] = [:]
        var i = 0
        while i < rest.count {
            let arg = rest[i]
            guard arg.hasPrefix("--"), arg.count > 2 else {
                throw CLIError("unexpected argument '\(arg)' (options look like --key value)")
            }
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
            params[key] = value
        }
        if invertMask { params["invert_mask"] = "true" }
        let display = EventDisplay(quiet: quiet)
        let supervisor = makeSupervisor(compute)
        defer { supervisor.stop() }
        let request = WorkerRequest(
            plugin: plugin, params: params, inputs: [:], splitInputs: true, output: output,
            baseFolder: FileManager.default.currentDirectoryPath)
        do {
            report(try runTask(request, on: supervisor, display: display))
        } catch let failure as CLIError {
            guard let code = Interrupt.exitCode else { throw failure }
            report("Error: \(failure)")
            throw ExitCode(code)
        }
    }
}

/// A request from any front end: resolves, reads the inputs, runs, writes the output atomically.
struct Task {
    let spec: PluginSpec
    let params: [String: String]
    let inputs: [String: String]
    let output: String
    let baseFolder: String

    func path(_ p: String) -> String { absolutePath(p, in: baseFolder) }

    /// Runs the task in this process (the worker's); returns the line that says what was written, the
    /// parameters the plugin ran with (as the output's metadata records them) and the files written, one per image.
    func execute(registry: PluginRegistry, events: TaskEvents) throws
        -> (message: String, parameters: [String: String], outputs: [String])
    {
        let outPath = path(output)
        let ext = (outPath as NSString).pathExtension.lowercased()
        guard ["png", "jpg", "jpeg"].contains(ext) else {
            throw CLIError("\(output): output must end in .png, .jpg or .jpeg")
        }
        let outDir = (outPath as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: outDir, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("\(output): folder \(outDir) does not exist")
        }
        // Said now, not after minutes of generation.
        guard access(outDir, W_OK) == 0 else {
            throw CLIError("\(output): folder \(outDir) is not writable (\(String(cString: strerror(errno))))")
        }
        try spec.checkInputs(Array(inputs.keys))
        // Model references that name an existing folder relative to the base (the workflow file's folder) become
        // absolute; anything else stays a hub id or path for the model server to resolve.
        var params = self.params
        for p in spec.params where p.isModel {
            if let v = params[p.key], !v.isEmpty, FileManager.default.fileExists(atPath: path(v)) {
                params[p.key] = path(v)
            }
        }
        let values = try spec.resolve(params)
        var images: [String: PixelImage] = [:]
        for (k, f) in inputs {
            let image = try ImageFiles.read(path(f))
            if let warning = ImageFiles.sizeWarning(image, path: f) { events.note(warning) }
            images[k] = image
        }
        if let seed = values["seed"], params["seed"].map({ Int($0.trimmingCharacters(in: .whitespaces)) == -1 }) ?? true
        {
            events.note("seed: \(seed)")
        }
        let started = Date()
        ServerABI.server?.onLoad = { msg in events.status(msg) }
        let pictures = try PluginRunner.runImages(
            RunRequest(plugin: spec, params: values, inputs: images), registry: registry,
            progress: { stage, step, total in
                events.update(stage: stage, step: step, total: total)
                return true
            },
            isCancelled: { Interrupt.requested })
        let outputs = ImageSeries.outputPaths(outPath, count: pictures.count)
        for (index, picture) in pictures.enumerated() {
            // Each file records the parameters that make it alone: its own seed, num_images 1.
            let own = ImageSeries.parameters(values, of: spec, index: index)
            var text: [(String, String)] = [("kandinsky:plugin", spec.id)]
            for (k, v) in own.sorted(by: { $0.key < $1.key }) { text.append(("kandinsky:\(k)", v.description)) }
            for (k, f) in inputs.sorted(by: { $0.key < $1.key }) { text.append(("kandinsky:input:\(k)", f)) }
            if pictures.count > 1 { text.append(("kandinsky:image", "\(index) of \(pictures.count)")) }
            try ImageFiles.write(picture, to: outputs[index], text: text)
        }
        let seconds = Date().timeIntervalSince(started)
        if Profile.enabled { events.note(Profile.report(wallSeconds: seconds)) }
        let written =
            pictures.count == 1
            ? output : "\(ImageSeries.outputPath(output, index: 0, count: pictures.count)) .. "
                + "\(ImageSeries.outputPath(output, index: pictures.count - 1, count: pictures.count))"
        let message = String(
            format: "wrote %@ (%@%dx%d) in %.1f s", written, pictures.count == 1 ? "" : "\(pictures.count) images, ",
            pictures[0].width, pictures[0].height, seconds)
        return (message, values.mapValues(\.description), outputs)
    }
}

/// A path as a task means it: `~` expanded, relative paths taken from `folder` (the working or workflow folder).
func absolutePath(_ path: String, in folder: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    let joined = expanded.hasPrefix("/") ? expanded : (folder as NSString).appendingPathComponent(expanded)
    return (joined as NSString).standardizingPath
}
