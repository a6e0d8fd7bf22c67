// A batch: the items of a manifest, which shard runs which, each item's seed and output, and its fingerprint (what
// it is computed from). The seed and the output depend on the item's index only, so an image never depends on how
// the work was split; the fingerprint lets a rerun skip what is already done.
import Digest
import Foundation
import PluginSchema
import WorkflowFormat

public struct BatchItem: Equatable, Sendable {
    /// Position in the manifest, from 0 (blank lines not counted).
    public let index: Int
    public let task: String
    /// The parameters as given, with the seed fixed.
    public let parameters: [String: String]
    /// Input name -> absolute path.
    public let inputs: [String: String]
    /// The output file, relative to the batch's folder.
    public let output: String
    /// The files the item writes: `output`, or for num_images N its numbered series (ImageSeries.outputPaths).
    public let outputs: [String]
    /// SHA-256 of the task, its parameters, its inputs' bytes and its output name.
    public let fingerprint: String
}

public struct BatchProblem: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum BatchPlan {
    /// The items of a manifest's tasks: the seed is the task's own, or `baseSeed` + the item's index; the output is
    /// the task's own (relative to the batch folder), or item-NNNNNN.png; inputs resolve against `manifestFolder`.
    public static func items(_ tasks: [WorkflowFile.Task], manifestFolder: String, baseSeed: Int64?) throws
        -> [BatchItem]
    {
        var outputs: [String: Int] = [:]
        return try tasks.enumerated().map { index, task in
            let label = "item \(index) (line order, from 0)"
            var parameters = task.parameters
            if let seed = parameters["seed"] {
                guard let value = Int64(seed), value >= 0 else {
                    throw BatchProblem("\(label): seed '\(seed)' must be a whole number >= 0 (a batch is reproducible)")
                }
            } else if let baseSeed {
                parameters["seed"] = String(baseSeed + Int64(index))
            } else {
                throw BatchProblem("\(label) has no seed: give each item one, or --base-seed N (item k: N + k)")
            }
            let output = task.output.isEmpty ? String(format: "item-%06d.png", index) : task.output
            let parts = output.split(separator: "/", omittingEmptySubsequences: false)
            guard !output.hasPrefix("/"), !parts.contains(".."), !parts.contains(""), !parts.contains(".") else {
                throw BatchProblem("\(label): output '\(output)' must be a plain path inside the batch folder")
            }
            let files = ImageSeries.outputPaths(output, count: ImageSeries.count(given: parameters))
            for file in files {
                if let first = outputs[file] { throw BatchProblem("items \(first) and \(index) both write \(file)") }
                outputs[file] = index
            }
            var inputs: [String: String] = [:]
            var inputDigests: [String] = []
            for (key, path) in task.inputs.sorted(by: { $0.key < $1.key }) {
                let absolute = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: manifestFolder + "/"))
                    .standardizedFileURL.path
                guard let bytes = FileManager.default.contents(atPath: absolute) else {
                    throw BatchProblem("\(label): input \(key): \(path): file not found")
                }
                inputs[key] = absolute
                inputDigests.append("\(key)=\(SHA256.hex(bytes))")
            }
            let canonical =
                [task.task]
                + parameters.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" } + inputDigests + [output]
            return BatchItem(
                index: index, task: task.task, parameters: parameters, inputs: inputs, output: output, outputs: files,
                fingerprint: SHA256.hex(Array(canonical.joined(separator: "\n").utf8)))
        }
    }

    /// The items of shard `index` of `count`: item k goes to shard k mod count.
    public static func shard(_ items: [BatchItem], index: Int, of count: Int) -> [BatchItem] {
        items.filter { $0.index % count == index }
    }

    /// Which shard this process runs: --shard/--of, else a Slurm array task (SLURM_ARRAY_TASK_ID from
    /// SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT), else a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with
    /// --of); no shard at all is the whole manifest (0 of 1).
    public static func shard(
        given: Int?, of givenCount: Int?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (index: Int, count: Int) {
        var index = given
        var count = givenCount
        if index == nil, let id = environment["SLURM_ARRAY_TASK_ID"].flatMap({ Int($0) }) {
            index = id - (environment["SLURM_ARRAY_TASK_MIN"].flatMap { Int($0) } ?? 0)
            count = count ?? environment["SLURM_ARRAY_TASK_COUNT"].flatMap { Int($0) }
        } else if index == nil, let completion = environment["JOB_COMPLETION_INDEX"].flatMap({ Int($0) }) {
            index = completion
        }
        guard let index else {
            if let count, count != 1 { throw BatchProblem("--of \(count) needs --shard I (or a Slurm or Indexed Job)") }
            return (0, 1)
        }
        guard let count, count >= 1 else {
            throw BatchProblem("shard \(index): the shard count is unknown: give --of N")
        }
        guard (0..<count).contains(index) else { throw BatchProblem("shard \(index) is not in 0..<\(count)") }
        return (index, count)
    }
}
