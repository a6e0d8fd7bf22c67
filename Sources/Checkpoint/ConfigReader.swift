// Reads a config.json (diffusers `register_to_config` or transformers PretrainedConfig) key by key.
// Every key must be either read, explicitly ignored as irrelevant to inference, or at the value whose behaviour
// we implement; `finish()` turns anything else into an error naming the key, so no setting is silently dropped.
import Foundation

/// Ranges the config readers use: wide enough for any published model, narrow enough that no layer divides by
/// zero, loops a negative count or sizes a tensor past memory.
public enum ConfigRange {
    /// Channel and feature counts, vocabulary and embedding counts.
    public static let size = 1...(1 << 20)
    /// Layer, block and head counts.
    public static let count = 1...1024
    /// Norm epsilons: positive (a zero or negative one is a division by zero or a NaN).
    public static let epsilon = 1e-30...1.0
    /// Convolution kernels and patch sizes.
    public static let kernel = 1...64
}

public final class ConfigReader {
    public let path: String
    public let values: [String: Any]
    private var consumed: Set<String> = []

    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError.fileMissing(path: path)
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            throw CheckpointError.badConfig(path: path, reason: "not a JSON object")
        }
        self.values = dict
    }

    public init(path: String, values: [String: Any]) {
        self.path = path
        self.values = values
    }

    private func raw(_ key: String) -> Any? {
        consumed.insert(key)
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    private func typeError(_ key: String, _ what: String) -> CheckpointError {
        .badConfig(path: path, reason: "\(key) must be \(what), found \(values[key].map { "\($0)" } ?? "nothing")")
    }

    /// The value of `key` must lie in `range` (a value the networks would divide by, loop over or allocate from,
    /// checked where it enters instead of trapping later).
    private func rangeError<T: Comparable>(_ key: String, _ value: T, _ range: ClosedRange<T>) -> CheckpointError {
        .badConfig(
            path: path,
            reason: "\(key) = \(value) is outside the allowed range "
                + "[\(range.lowerBound), \(range.upperBound)]")
    }

    public func int(_ key: String, default d: Int? = nil, in range: ClosedRange<Int>? = nil) throws -> Int {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let d = Self.number(v), d == d.rounded(), abs(d) < 9e15 else { throw typeError(key, "an integer") }
        if let range, !range.contains(Int(d)) { throw rangeError(key, Int(d), range) }
        return Int(d)
    }

    public func double(_ key: String, default d: Double? = nil, in range: ClosedRange<Double>? = nil) throws -> Double {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let d = Self.number(v) else { throw typeError(key, "a number") }
        if let range, !range.contains(d) { throw rangeError(key, d, range) }
        return d
    }

    public func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = raw(key) else { return d }
        guard Self.isBool(v), let b = v as? Bool else { throw typeError(key, "true or false") }
        return b
    }

    public func string(_ key: String, default d: String?) throws -> String? {
        guard let v = raw(key) else { return d }
        guard let s = v as? String else { throw typeError(key, "a string") }
        return s
    }

    public func ints(_ key: String, default d: [Int]? = nil, in range: ClosedRange<Int>? = nil) throws -> [Int] {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let a = v as? [NSNumber] else { throw typeError(key, "a list of integers") }
        guard !a.isEmpty else { throw typeError(key, "a list of at least one integer") }
        return try checked(key, a.map(\.intValue), range)
    }

    private func checked(_ key: String, _ values: [Int], _ range: ClosedRange<Int>?) throws -> [Int] {
        if let range, let outside = values.first(where: { !range.contains($0) }) {
            throw rangeError(key, outside, range)
        }
        return values
    }

    /// An int, or a list of ints (diffusers lets per-block settings be either); widened to `count` entries.
    public func intPerBlock(
        _ key: String, count: Int, default d: Int? = nil,
        in range: ClosedRange<Int>? = nil
    ) throws -> [Int]? {
        guard let v = raw(key) else { return d.map { Array(repeating: $0, count: count) } }
        if let n = v as? NSNumber, !(v is [Any]) {
            return try checked(key, Array(repeating: n.intValue, count: count), range)
        }
        guard let a = v as? [NSNumber], a.count == count else {
            throw typeError(key, "an integer or \(count) integers")
        }
        return try checked(key, a.map(\.intValue), range)
    }

    public func strings(_ key: String, default d: [String]? = nil) throws -> [String] {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let a = v as? [String] else { throw typeError(key, "a list of strings") }
        return a
    }

    public func doubles(_ key: String, default d: [Double]) throws -> [Double] {
        guard let v = raw(key) else { return d }
        guard let a = v as? [Any] else { throw typeError(key, "a list of numbers") }
        return try a.map {
            guard let d = Self.number($0) else { throw typeError(key, "a list of numbers") }
            return d
        }
    }

    /// A string setting that must be one of an enum's raw values.
    public func choice<T: RawRepresentable>(_ key: String, default d: String) throws -> T where T.RawValue == String {
        let s = try string(key, default: d)!
        guard let v = T(rawValue: s) else { throw CheckpointError.unsupportedConfig(path: path, key: key, value: s) }
        return v
    }

    /// Keys that do not change inference (training settings, informational sizes).
    public func ignore(_ keys: [String]) { consumed.formUnion(keys) }

    /// The key must be absent, null or one of `allowed`: we implement only those behaviours.
    public func require(_ key: String, in allowed: [AnyHashable]) throws {
        guard let v = raw(key) else { return }
        guard let h = v as? AnyHashable, allowed.contains(where: { Self.same($0, h) }) else {
            throw CheckpointError.unsupportedConfig(path: path, key: key, value: "\(v)")
        }
    }

    private static func same(_ a: AnyHashable, _ b: AnyHashable) -> Bool {
        let (ab, bb) = (isBool(a.base), isBool(b.base))
        if ab || bb { return ab && bb && (a.base as? Bool) == (b.base as? Bool) }
        if let x = number(a.base), let y = number(b.base) { return x == y }
        return a == b
    }

    /// JSON true/false (Foundation's boolean NSNumber; plain 0/1 also bridge to Bool, so test the class).
    static func isBool(_ v: Any) -> Bool {
        if v is Bool && !(v is NSNumber) { return true }
        return ObjectIdentifier(type(of: v as AnyObject)) == ObjectIdentifier(type(of: NSNumber(value: true)))
    }

    /// A JSON number as the nearest Double. Linux Foundation parses decimals as NSDecimalNumber, whose
    /// doubleValue is not correctly rounded (1/255 comes back one ulp off); its decimal text is exact.
    static func number(_ v: Any) -> Double? {
        if isBool(v) { return nil }
        switch v {
        case let d as NSDecimalNumber: return Double(d.stringValue) ?? d.doubleValue
        case let n as NSNumber: return n.doubleValue
        case let d as Double: return d
        case let i as Int: return Double(i)
        default: return nil
        }
    }

    /// Errors on the first key that was neither read nor ignored (private `_name` keys are metadata).
    public func finish() throws {
        for key in values.keys.sorted() where !key.hasPrefix("_") && !consumed.contains(key) {
            if values[key] is NSNull { continue }
            throw CheckpointError.unsupportedConfig(path: path, key: key, value: "\(values[key]!)")
        }
    }
}
