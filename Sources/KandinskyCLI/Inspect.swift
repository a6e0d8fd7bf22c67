// `kandinsky inspect MODEL`: what a model folder holds, without loading the weights.
import ArgumentParser
import Checkpoint
import Foundation
import ModelServer
import TensorCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a model's components, parameter counts, dtypes, sizes and defaults.")

    @Argument(help: "Model folder or hub id in the local Hugging Face cache; without one, the models used when a task names none.")
    var model: String?

    func run() throws {
        guard let model else {
            let auto = Precision(choice: "auto")!
            print("Compute: --precision auto runs \(auto.rawValue) here; \(ComputeBackend.summary)\n")
            print("Default models (" + (Defaults.embedded.map { "embedded set \($0)" } ?? "no embedded set found; searched "
                  + DefaultModelSet.candidates(executable: Bundle.main.executableURL).joined(separator: ", ")) + "):")
            let models = [("prior", Defaults.prior)] + Defaults.decoders.sorted(by: { $0.key < $1.key })
                + [("depth", Defaults.depthEstimator)]
            for (kind, ref) in models {
                print("\n[\(kind)]")
                do { try show(ref) } catch { print("  \(error)") }
            }
            return
        }
        try show(model)
    }

    func show(_ model: String) throws {
        let folder = try ModelResolver.resolve(model)
        print("\(model) -> \(folder)")
        let fm = FileManager.default
        var components = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted().filter { c in
            var d: ObjCBool = false
            return fm.fileExists(atPath: (folder as NSString).appendingPathComponent(c), isDirectory: &d) && d.boolValue
        }
        // A transformers model folder (the depth estimator) is its own one component.
        if components.isEmpty && fm.fileExists(atPath: (folder as NSString).appendingPathComponent("config.json")) {
            components = [""]
        }
        if components.isEmpty {
            throw CLIError("\(folder): no component folders and no config.json (not a diffusers or transformers model)")
        }
        for component in components {
            let c = component.isEmpty ? "model" : component
            let dir = component.isEmpty ? folder : (folder as NSString).appendingPathComponent(component)
            let cfgName = ["config.json", "scheduler_config.json", "preprocessor_config.json", "tokenizer_config.json"]
                .first { fm.fileExists(atPath: (dir as NSString).appendingPathComponent($0)) }
            var cls = ""
            if let n = cfgName, let d = fm.contents(atPath: (dir as NSString).appendingPathComponent(n)),
               let j = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] {
                cls = (j["_class_name"] as? String) ?? (j["architectures"] as? [String])?.first ?? (j["tokenizer_class"] as? String)
                    ?? (j["image_processor_type"] as? String) ?? (j["feature_extractor_type"] as? String) ?? ""
            }
            do {
                let store = try WeightStore(folder: dir)
                var params = 0, bytes = 0
                var dtypes: [String: Int] = [:]
                for k in store.keys {
                    let e = store.entry(k)!
                    params += e.shape.reduce(1, *)
                    bytes += e.byteCount
                    dtypes[e.dtype.rawValue, default: 0] += 1
                }
                print("  " + pad(c, 16) + " " + pad(cls, 34) + String(format: " %8.1fM params  ", Double(params) / 1e6)
                      + dtypes.keys.sorted().joined(separator: "/") + String(format: "  %.1f MB on disk, %.1f MB as float32", Double(bytes) / 1e6, Double(params * 4) / 1e6))
            } catch CheckpointError.noWeights {
                print("  " + pad(c, 16) + " " + cls)
            } catch {
                print("  \(c): \(error)")
            }
        }
        if fm.fileExists(atPath: (folder as NSString).appendingPathComponent("unet")) {
            let d = try ModelDefaults.read(folder: folder)
            print("  defaults: \(d.width)x\(d.height)" + (d.steps.map { ", \($0) steps" } ?? "") + (d.guidance.map { ", guidance \($0)" } ?? "") +
                  (FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(ModelDefaults.fileName)) ? " (\(ModelDefaults.fileName))" : " (built-in)"))
        }
    }
}

/// Left-aligned column (String(format:) ignores widths for %@ on Linux).
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
