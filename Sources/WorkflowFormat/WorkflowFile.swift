// A workflow file, decoded strictly (Codable, not [String: Any]): a misspelt key is an error naming it, a syntax
// error names its line and column, and a task's parameter values are strings, numbers, booleans or (weights) lists
// of numbers. `kandinsky workflow`'s --help documents the format; the CLI and the fuzzer
// (Tests/Fuzz/WorkflowFile) use this one decoder.
import Foundation

public struct WorkflowFile: Decodable {
    public struct Task: Decodable {
        public let task: String
        /// Parameter values as the plugin schema parses them (numbers in their JSON spelling).
        public let parameters: [String: String]
        public let inputs: [String: String]
        /// The file to write; in a batch manifest it may be left out (then "", and the batch names the file).
        public let output: String

        static let keys: Set<String> = ["task", "parameters", "inputs", "output"]
        /// Set in a decoder's userInfo for batch manifest lines.
        static let outputOptional = CodingUserInfoKey(rawValue: "kandinsky.outputOptional")!

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: NamedKey.self)
            try rejectUnknownKeys(in: container, allowed: Task.keys)
            task = try container.decode(String.self, forKey: NamedKey("task"))
            if decoder.userInfo[Task.outputOptional] as? Bool == true {
                output = try container.decodeIfPresent(String.self, forKey: NamedKey("output")) ?? ""
            } else {
                output = try container.decode(String.self, forKey: NamedKey("output"))
            }
            let values = try container.decodeIfPresent([String: ParameterValue].self, forKey: NamedKey("parameters"))
            parameters = (values ?? [:]).mapValues(\.text)
            inputs = try container.decodeIfPresent([String: String].self, forKey: NamedKey("inputs")) ?? [:]
        }
    }

    public let tasks: [Task]

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: NamedKey.self)
        try rejectUnknownKeys(in: container, allowed: ["tasks"])
        guard container.contains(NamedKey("tasks")) else { throw WorkflowProblem("needs a \"tasks\" list") }
        tasks = try container.decode([Task].self, forKey: NamedKey("tasks"))
    }

    /// Reads the file `name` (for messages) from `data`; every problem is a WorkflowProblem naming the file and the
    /// place.
    public static func parse(_ data: Data, name: String) throws -> WorkflowFile {
        do {
            _ = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw WorkflowProblem("\(name): not a JSON object: invalid JSON\(position(of: error, in: data))")
        }
        do {
            return try JSONDecoder().decode(WorkflowFile.self, from: data)
        } catch let problem as WorkflowProblem {
            throw WorkflowProblem("\(name): \(problem.description)")
        } catch let error as DecodingError {
            throw WorkflowProblem("\(name): \(describe(error))")
        }
    }

    /// A batch manifest (JSON lines, one task a line in the workflow task format, `output` optional; blank lines
    /// skipped): its tasks in order, or a WorkflowProblem naming the file and the line.
    public static func parseManifest(_ data: Data, name: String) throws -> [Task] {
        var tasks: [Task] = []
        let decoder = JSONDecoder()
        decoder.userInfo[Task.outputOptional] = true
        for (number, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let text = Data(line)
            guard text.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else { continue }
            do {
                _ = try JSONSerialization.jsonObject(with: text)
                tasks.append(try decoder.decode(Task.self, from: text))
            } catch let problem as WorkflowProblem {
                throw WorkflowProblem("\(name) line \(number + 1): \(problem.description)")
            } catch let error as DecodingError {
                throw WorkflowProblem("\(name) line \(number + 1): \(describe(error))")
            } catch {
                throw WorkflowProblem("\(name) line \(number + 1): not a JSON object")
            }
        }
        return tasks
    }

    /// " at line L, column C" from the "around character N" of JSONSerialization's message, or "".
    private static func position(of error: Error, in data: Data) -> String {
        let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? ""
        guard let range = detail.range(of: "character "),
              let offset = Int(detail[range.upperBound...].prefix { $0.isNumber }), offset <= data.count
        else { return "" }
        let before = data.prefix(offset)
        let line = before.filter { $0 == 0x0A }.count + 1
        let column = offset - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
        return " at line \(line), column \(column)"
    }

    /// A decoding error as "task 2: output: expected a string".
    private static func describe(_ error: DecodingError) -> String {
        let (path, what): ([CodingKey], String)
        switch error {
        case .typeMismatch(let type, let context):
            (path, what) = (context.codingPath, "expected \(typeName(type))")
        case .valueNotFound(let type, let context):
            (path, what) = (context.codingPath, "expected \(typeName(type)), found null")
        case .keyNotFound(let key, let context):
            (path, what) = (context.codingPath + [key], "missing")
        case .dataCorrupted(let context):
            (path, what) = (context.codingPath, context.debugDescription)
        @unknown default:
            return "\(error)"
        }
        if path.count == 1 && path[0].stringValue == "tasks" { return "needs a \"tasks\" list" }
        return place(path) + what
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is [Task].Type, is [Any].Type: return "a list"
        default: return "an object or value of another kind"
        }
    }
}

/// "task 2: output: " for the coding path [tasks, 1, output]; "" for the top level.
private func place(_ path: [CodingKey]) -> String {
    var parts: [String] = []
    var rest = path[...]
    if rest.first?.stringValue == "tasks", let index = rest.dropFirst().first?.intValue {
        parts.append("task \(index + 1)")
        rest = rest.dropFirst(2)
    }
    parts += rest.map { $0.intValue.map { "item \($0 + 1)" } ?? $0.stringValue }
    return parts.isEmpty ? "" : parts.joined(separator: ": ") + ": "
}

/// What is wrong with a workflow file, in one line.
public struct WorkflowProblem: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

struct NamedKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(_ name: String) { stringValue = name; intValue = nil }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
}

private func rejectUnknownKeys(in container: KeyedDecodingContainer<NamedKey>, allowed: Set<String>) throws {
    let unknown = container.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
    guard !unknown.isEmpty else { return }
    let names = unknown.map { "'\($0)'" }.joined(separator: ", ")
    throw WorkflowProblem(place(container.codingPath) + "unknown key\(unknown.count > 1 ? "s" : "") \(names) (known: "
                          + allowed.sorted().joined(separator: ", ") + ")")
}

/// A parameter value: a string, a number, true/false, or a list of numbers (fusion's weights), kept as the text the
/// plugin schema parses.
struct ParameterValue: Decodable {
    let text: String

    init(from decoder: Decoder) throws {
        let value = try decoder.singleValueContainer()
        if let string = try? value.decode(String.self) {
            text = string
        } else if let integer = try? value.decode(Int.self) {
            text = String(integer)
        } else if let number = try? value.decode(Double.self) {
            text = String(number)
        } else if let flag = try? value.decode(Bool.self) {
            text = flag ? "true" : "false"
        } else if let list = try? value.decode([Double].self) {
            text = String(decoding: try JSONSerialization.data(withJSONObject: list), as: UTF8.self)
        } else {
            throw WorkflowProblem(place(decoder.codingPath) + "expected a string, a number, true/false or a list of "
                                  + "numbers")
        }
    }
}
