// Values given as text (CLI, workflow file, HTTP request) checked against a plugin's schema: one rule for every
// front end and the worker.
import Foundation

/// Seeds drawn for seed = -1 lie in [0, 191965535], as in the original tool.
public let maxRandomSeed: Int64 = 191_965_535

extension PluginSpec {
    /// Checks names and values given as text (CLI or workflow), fills defaults and a random seed for -1.
    public func resolve(_ given: [String: String], randomSeed: () -> Int64 = { Int64.random(in: 0...maxRandomSeed) })
        throws -> [String: ParamValue]
    {
        var out: [String: ParamValue] = [:]
        for (k, v) in given {
            guard let p = params.first(where: { $0.key == k }) else {
                throw ParamError.unknown(k, closestName(k, in: params.map(\.key)), id)
            }
            out[k] = try ParamValue.parse(v, for: p).get()
        }
        for p in params where out[p.key] == nil {
            if let d = p.defaultText {
                out[p.key] = try ParamValue.parse(d, for: p).get()
            } else if !p.optional {
                throw ParamError.missingParam(p.key, id)
            }
        }
        for p in params where p.kind == .seed {
            if case .int(-1)? = out[p.key] { out[p.key] = .int(randomSeed()) }
        }
        return out
    }

    /// Checks the given input names against the schema (repeated inputs take numbered keys: image1, image2, ...).
    public func checkInputs(_ keys: [String]) throws {
        for k in keys where !takesInput(k) { throw ParamError.unknownInput(k, id) }
        for i in inputs where !i.optional && !keys.contains(where: { i.accepts($0) }) {
            throw ParamError.missingInput(i.repeated ? i.key + "1" : i.key, id)
        }
    }

    /// Whether `key` names one of this plugin's inputs (image, or image1, image2, ... for a repeated one).
    public func takesInput(_ key: String) -> Bool { inputs.contains { $0.accepts(key) } }
}
