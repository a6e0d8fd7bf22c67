// The embedded default model set: a small Kandinsky 2.2 trained on rendered scenes (tools/train), shipped as
// models/default in the repository and used when a task names no model.
import Foundation
import ShippedFiles

public enum DefaultModelSet {
    /// The folder of each part inside the set: the prior pipeline, one decoder pipeline per decoder kind, and the
    /// depth estimator (a transformers model folder).
    public static let parts: KeyValuePairs<String, String> = [
        "prior": "prior", "text2img": "decoder", "inpaint": "decoder-inpaint", "controlnet": "controlnet-depth",
        "depth": "depth",
    ]

    /// Where the set may be, in order (ShippedFiles): $KANDINSKY_DEFAULT_MODELS; `share/kandinsky/models/default`
    /// beside an installed `bin/`; `models/default` in the checkout the executable was built in.
    public static func candidates(
        executable: URL?, environment env: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        ShippedFiles.candidates(
            variable: "KANDINSKY_DEFAULT_MODELS", installed: "models/default", checkout: "models/default",
            executable: executable, environment: env)
    }

    /// The first candidate holding every part (a diffusers `model_index.json` or a transformers `config.json`), or
    /// nil.
    public static func locate(executable: URL? = Bundle.main.executableURL,
                              environment env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        candidates(executable: executable, environment: env).first { root in
            parts.allSatisfy { part in
                ["model_index.json", "config.json"].contains {
                    FileManager.default.fileExists(atPath: root + "/" + part.value + "/" + $0)
                }
            }
        }
    }

    /// The folder of `part` ("prior", "text2img", "inpaint", "controlnet", "depth") inside the set at `root`.
    public static func folder(_ part: String, in root: String) -> String? {
        parts.first { $0.key == part }.map { root + "/" + $0.value }
    }
}
