// Reads a config.json (diffusers `register_to_config` or transformers PretrainedConfig) key by key.
// Every key must be either read, explicitly ignored as irrelevant to inference, or at the value whose behaviour
// we implement; `finish()` turns anything else into an error naming the key, so no setting is silently dropped.
import Foundation

public final class ConfigReader {
    public let path: String
    public let values: [String: Any]
    private var consumed: Set<String> = []

    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { throw CheckpointError.fileMissing(path: path) }
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

    public func int(_ key: String, default d: Int? = nil) throws -> Int {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let d = Self.number(v), d == d.rounded(), abs(d) < 9e15 else { throw typeError(key, "an integer") }
        return Int(d)
    }

    public func double(_ key: String, default d: Double? = nil) throws -> Double {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let d = Self.number(v) else { throw typeError(key, "a number") }
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

    public func ints(_ key: String, default d: [Int]? = nil) throws -> [Int] {
        guard let v = raw(key) else {
            if let d { return d }
            throw CheckpointError.badConfig(path: path, reason: "missing \(key)")
        }
        guard let a = v as? [NSNumber] else { throw typeError(key, "a list of integers") }
        return a.map(\.intValue)
    }

    /// An int, or a list of ints (diffusers lets per-block settings be either); widened to `count` entries.
    public func intPerBlock(_ key: String, count: Int, default d: Int? = nil) throws -> [Int]? {
        guard let v = raw(key) else { return d.map { Array(repeating: $0, count: count) } }
        if let n = v as? NSNumber, !(v is [Any]) { return Array(repeating: n.intValue, count: count) }
        guard let a = v as? [NSNumber], a.count == count else { throw typeError(key, "an integer or \(count) integers") }
        return a.map(\.intValue)
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
        return try a.map { guard let d = Self.number($0) else { throw typeError(key, "a list of numbers") }; return d }
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
