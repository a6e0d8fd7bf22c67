// `kandinsky`: the host program. Loads the variant plugins, holds the one model server, and runs requests from
// the command line or a workflow file.
import ArgumentParser
import CPUFeatures
import Foundation
import ImageIO
import ImageProcessing
import ModelServer
import PluginHost
import Supervisor
import TensorCore

@main
struct Kandinsky: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kandinsky",
        abstract: "Kandinsky 2.2 image generation and editing on the CPU, through plugins.",
        discussion: """
            Models are diffusers-layout folders or hub ids already in the local Hugging Face cache (nothing is \
            downloaded). Without model_name / prior_model_name the default model set is used: the small model \
            trained on rendered scenes that ships in models/default (64x64; `kandinsky inspect` lists it), here \
            \(Defaults.prior) and \(Defaults.decoders["text2img"]!) (inpaint: \(Defaults.decoders["inpaint"]!), \
            controlnet-depth: \(Defaults.decoders["controlnet"]!)); set KANDINSKY_PRIOR and \
            KANDINSKY_DECODER(_INPAINT, _CONTROLNET) to change them, or KANDINSKY_DEFAULT_MODELS to the set's \
            folder. Plugins are searched \
            beside this program, in lib/kandinsky/plugins of an installed prefix (tools/install.sh), in \
            KANDINSKY_PLUGIN_PATH (colon-separated) and in ~/.local/share/kandinsky/plugins.
            """,
        version: "0.1.0",
        subcommands: [
            Plugins.self, Run.self, Workflow.self, BatchCommand.self, Inspect.self, Serve.self, WorkerCommand.self,
        ])

    /// The engine is compiled for x86-64-v3 (docs/performance.md): on an older CPU its first vector instruction would
    /// end the process with SIGILL, so say what is missing before any of it runs.
    static func main() {
        let missing = String(cString: kd_cpu_missing_features())
        if !missing.isEmpty {
            report(
                "kandinsky: this CPU lacks \(missing); this build needs an x86-64-v3 CPU (AVX2, FMA and F16C: "
                    + "Intel Haswell, AMD Excavator or later)")
            Foundation.exit(1)
        }
        main(nil)
    }
}

/// The models a task uses when it names none: KANDINSKY_PRIOR / KANDINSKY_DECODER(_INPAINT, _CONTROLNET) if set,
/// else the embedded default model set, else (a build without it) the published kandinsky-community ids.
enum Defaults {
    static let env = ProcessInfo.processInfo.environment
    static let embedded = DefaultModelSet.locate()
    static func pick(_ variable: String, _ part: String, hubId: String) -> String {
        env[variable] ?? embedded.flatMap { DefaultModelSet.folder(part, in: $0) } ?? hubId
    }
    static let prior = pick("KANDINSKY_PRIOR", "prior", hubId: "kandinsky-community/kandinsky-2-2-prior")
    static let decoders = [
        "text2img": pick("KANDINSKY_DECODER", "text2img", hubId: "kandinsky-community/kandinsky-2-2-decoder"),
        "inpaint": pick(
            "KANDINSKY_DECODER_INPAINT", "inpaint", hubId: "kandinsky-community/kandinsky-2-2-decoder-inpaint"),
        "controlnet": pick(
            "KANDINSKY_DECODER_CONTROLNET", "controlnet", hubId: "kandinsky-community/kandinsky-2-2-controlnet-depth"),
    ]
    /// Ikomia's depth estimator when the embedded set is missing.
    static let depthEstimator = pick("KANDINSKY_DEPTH_MODEL", "depth", hubId: "Intel/dpt-large")
}

/// One line to stderr, for warnings and errors.
func report(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

/// An error for the user: one line, its control characters escaped (a value echoed back must not move the cursor,
/// recolour the terminal or start a new line).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = escapingControlCharacters(d) }
}

/// C0 and C1 control characters and DEL as \xHH; everything else unchanged.
func escapingControlCharacters(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        let v = scalar.value
        if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) {
            out += "\\x" + String(format: "%02x", v)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Parses a size like 12G, 800M or 2000000000 (bytes).
func parseBytes(_ s: String) throws -> Int {
    let units: [Character: Double] = ["K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12]
    var t = s.trimmingCharacters(in: .whitespaces).uppercased()
    if t.hasSuffix("B") { t.removeLast() }
    let scale = t.last.flatMap { units[$0] } ?? 1
    if units[t.last ?? " "] != nil { t.removeLast() }
    guard let v = Double(t), v > 0, v.isFinite else {
        throw CLIError("--max-memory '\(s)': expected a size such as 12G or 800M")
    }
    // Int(...) traps beyond Int.max: refuse sizes no machine has instead.
    guard v * scale < 1e18 else {
        throw CLIError("--max-memory '\(s)': larger than any machine's memory (at most 1000P)")
    }
    return Int(v * scale)
}

/// `--precision` and `--verbose`, shared by the subcommands that compute.
struct ComputeOptions: ParsableArguments {
    @Option(
        name: .customLong("precision"),
        help: ArgumentHelp(
            "auto, fp32 or bf16. fp32 is the parity mode; bf16 keeps large weights in bfloat16 and multiplies in "
                + "bfloat16 (norms, softmax and the scheduler stay fp32); auto is bf16 where the CPU has avx512_bf16 "
                + "or AMX, else fp32. On other CPUs bf16 is emulated: bf16 results, not bf16 speed.",
            valueName: "mode"))
    var precision = "auto"
    @Flag(name: .customLong("verbose"), help: "Say which precision, backend and oneDNN instruction set ran.")
    var verbose = false

    func resolved() throws -> Precision {
        guard let p = Precision(choice: precision) else {
            throw CLIError("--precision '\(precision)': expected one of \(Precision.choices.joined(separator: ", "))")
        }
        return p
    }
}

/// Host start-up shared by the subcommands: plugins loaded (warnings shown), the model server installed.
func startHost(
    precision: Precision = .fp32, skipping: Set<String> = [], willLoad: (String) -> Void = { _ in },
    didLoad: (String) -> Void = { _ in }
) -> PluginRegistry {
    let registry = PluginRegistry()
    registry.load(directories: PluginRegistry.searchPath(), skipping: skipping, willLoad: willLoad, didLoad: didLoad)
    for w in registry.warnings { report("warning: \(w)") }
    if ServerABI.server == nil {
        ServerABI.server = ModelServer(
            defaultPrior: Defaults.prior, defaultDecoders: Defaults.decoders,
            defaultDepthEstimator: Defaults.depthEstimator, precision: precision)
    }
    return registry
}

/// Host start-up for the computing subcommands: the precision chosen, and said with --verbose.
func startHost(
    _ options: ComputeOptions, skipping: Set<String> = [], willLoad: (String) -> Void = { _ in },
    didLoad: (String) -> Void = { _ in }
) throws -> PluginRegistry {
    let precision = try options.resolved()
    if options.verbose {
        report("precision \(precision.rawValue) (--precision \(options.precision)), \(ComputeBackend.summary)")
    }
    return startHost(precision: precision, skipping: skipping, willLoad: willLoad, didLoad: didLoad)
}

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the plugins with their inputs and parameters.")

    func run() throws {
        // A worker loads the plugins first, so a library whose init crashes is found there and left out here.
        let probe = Supervisor(executable: currentExecutable(), arguments: ["worker", "--precision", "fp32"])
        try probe.start { event in if event.kind == .note { report(event.message ?? "") } }
        probe.stop()
        let registry = startHost(skipping: Set(probe.skipped.map(\.library)))
        if registry.plugins.isEmpty {
            throw CLIError("no plugins found (searched \(PluginRegistry.searchPath().joined(separator: ", ")))")
        }
        for p in registry.plugins {
            print(
                "\(p.id) (\(p.name) \(p.version))"
                    + (p.aliases.isEmpty ? "" : " — aliases: \(p.aliases.joined(separator: ", "))"))
            print("  \(p.description)")
            print("  library: \(p.library)")
            for i in p.inputs {
                let flag = i.repeated ? "--\(i.key)1, --\(i.key)2, ..." : "--\(i.key)"
                print("  input  \(flag) (\(i.kind.rawValue)\(i.optional ? ", optional" : "")): \(i.help)")
            }
            for q in p.params {
                var line = "  param  --\(q.key.replacingOccurrences(of: "_", with: "-")) <\(q.kind.rawValue)>"
                if let d = q.defaultText {
                    line += " default \(d)"
                } else if q.optional {
                    line += " optional"
                } else {
                    line += " required"
                }
                if q.kind == .int || q.kind == .float || q.kind == .floatList {
                    line += ", range [\(fmt(q.min)), \(fmt(q.max))]"
                }
                print(line + ": \(q.help)")
            }
            print("")
        }
    }
}

func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }
