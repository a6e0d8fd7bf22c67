// Parameter values from the command line or a workflow file, checked against a plugin's schema. Values are
// parsed, never evaluated: a weights list is JSON numbers or nothing.
import Foundation

public enum ParamValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int64)
    case float(Double)
    case string(String)
    case bool(Bool)
    case floatList([Double])

    public var description: String {
        switch self {
        case .int(let v): return "\(v)"
        case .float(let v): return "\(v)"
        case .string(let v): return v
        case .bool(let v): return v ? "true" : "false"
        case .floatList(let v): return "[" + v.map { "\($0)" }.joined(separator: ", ") + "]"
        }
    }

    public static func parse(_ text: String, for p: ParamSpec) -> Result<ParamValue, ParamError> {
        let t = text.trimmingCharacters(in: .whitespaces)
        func bad(_ why: String) -> Result<ParamValue, ParamError> { .failure(.invalid(p.key, text, why)) }
        switch p.kind {
        case .string:
            return .success(.string(text))
        case .bool:
            switch t.lowercased() {
            case "true", "1", "yes", "on": return .success(.bool(true))
            case "false", "0", "no", "off": return .success(.bool(false))
            default: return bad("expected true or false")
            }
        case .int, .seed:
            guard let v = Int64(t) else { return bad("expected a whole number") }
            if p.kind == .seed && v == -1 { return .success(.int(v)) }
            guard Double(v) >= p.min, Double(v) <= p.max else {
                return bad("must be between \(fmt(p.min)) and \(fmt(p.max))")
            }
            return .success(.int(v))
        case .float:
            guard let v = Double(t), v.isFinite else { return bad("expected a finite number") }
            guard v >= p.min, v <= p.max else { return bad("must be between \(fmt(p.min)) and \(fmt(p.max))") }
            return .success(.float(v))
        case .floatList:
            guard let data = t.data(using: .utf8),
                let arr = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [Any]
            else {
                return bad("expected a JSON list of numbers such as [0.3, 0.3, 0.4]")
            }
            var out: [Double] = []
            for v in arr {
                guard let n = v as? NSNumber, !(String(describing: type(of: v)).contains("Boolean")),
                    n.doubleValue.isFinite
                else {
                    return bad("every element must be a number")
                }
                guard n.doubleValue >= p.min, n.doubleValue <= p.max else {
                    return bad("each element must be between \(fmt(p.min)) and \(fmt(p.max))")
                }
                out.append(n.doubleValue)
            }
            guard !out.isEmpty else { return bad("the list is empty") }
            return .success(.floatList(out))
        }
    }

    static func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)" }
}

public enum ParamError: Error, CustomStringConvertible, Equatable {
    case invalid(String, String, String)
    case unknown(String, String?, String)
    case missingInput(String, String)
    case missingParam(String, String)
    case unknownInput(String, String)

    public var description: String {
        switch self {
        case .invalid(let k, let v, let why): return "parameter \(k) = '\(v)': \(why)"
        case .unknown(let k, let suggestion, let plugin):
            return "unknown parameter '\(k)' for \(plugin)" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
        case .missingInput(let k, let plugin): return "\(plugin) needs the input '\(k)'"
        case .missingParam(let k, let plugin): return "\(plugin) needs the parameter '\(k)'"
        case .unknownInput(let k, let plugin): return "unknown input '\(k)' for \(plugin)"
        }
    }
}

/// The known name closest to `name`: one it starts (or that starts it), else the nearest by edit distance if that
/// is plausibly a typo.
public func closestName(_ name: String, in names: [String]) -> String? {
    let lower = name.lowercased()
    if let prefixed = names.filter({ $0.lowercased().hasPrefix(lower) || lower.hasPrefix($0.lowercased()) }).min(by: {
        $0.count < $1.count
    }) {
        return prefixed
    }
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var prev = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return a.isEmpty ? b.count : prev[b.count]
    }
    let best = names.map { ($0, distance(Array(name.lowercased()), Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let (n, d) = best, d <= max(2, name.count / 3) else { return nil }
    return n
}
