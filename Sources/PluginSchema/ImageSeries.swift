// Several images from one request (num_images, ABI 1.5's output_count): where each goes and what each records.
// Image k is made with seed + k, so each file records its own seed and reruns alone with it; the rules live here
// once for every front end (the CLI, workflow files, the batch, the server).
import Foundation

extension PluginSpec {
    /// The parameter that asks for several images; the host reads it as the run's output_count.
    public static let imageCountKey = "num_images"

    /// The key of the plugin's seed parameter (KD_PARAM_SEED), if it has one.
    public var seedKey: String? { params.first { $0.kind == .seed }?.key }
}

public enum ImageSeries {
    /// The most images one request may ask for (every plugin declares num_images up to this).
    public static let maximumCount = 64

    /// How many images resolved parameters ask for (1 when the plugin declares no num_images).
    public static func count(_ values: [String: ParamValue]) -> Int {
        guard case .int(let count) = values[PluginSpec.imageCountKey] else { return 1 }
        return Int(max(count, 1))
    }

    /// The files to plan for parameters as given, before the schema checks them: num_images' whole number held to
    /// 1 ... maximumCount, anything else 1 (such a request fails when it runs).
    public static func count(given parameters: [String: String]) -> Int {
        let given = parameters[PluginSpec.imageCountKey].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return min(max(given ?? 1, 1), maximumCount)
    }

    /// Where image `index` of `count` goes: `output` itself for a single image, else NAME-INDEX.EXT beside it
    /// (out.png -> out-0.png, out-1.png, ...).
    public static func outputPath(_ output: String, index: Int, count: Int) -> String {
        guard count > 1 else { return output }
        let ext = (output as NSString).pathExtension
        let stem = (output as NSString).deletingPathExtension
        return ext.isEmpty ? "\(stem)-\(index)" : "\(stem)-\(index).\(ext)"
    }

    /// Every output path of a request of `count` images, in image order.
    public static func outputPaths(_ output: String, count: Int) -> [String] {
        (0..<count).map { outputPath(output, index: $0, count: count) }
    }

    /// The parameters image `index` was made with, as one run of it alone: its own seed (seed + index) and
    /// num_images 1.
    public static func parameters(_ values: [String: ParamValue], of spec: PluginSpec, index: Int)
        -> [String: ParamValue]
    {
        guard count(values) > 1 else { return values }
        var own = values
        own[PluginSpec.imageCountKey] = .int(1)
        if let key = spec.seedKey, case .int(let seed) = values[key] { own[key] = .int(seed + Int64(index)) }
        return own
    }
}
