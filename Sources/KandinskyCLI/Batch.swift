// `kandinsky batch`: a manifest of tasks (JSON lines) run into a folder, split into shards that may run anywhere
// (a Slurm job array, a Kubernetes Indexed Job), rerun safely: each item's seed and output are fixed by the
// manifest, finished items are skipped, every output is written atomically and recorded per shard.
import ArgumentParser
import Batch
import Foundation
import Supervisor
import WorkflowFormat

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Run a manifest of tasks into a folder, in shards, skipping what is done (docs/batch.md).",
        subcommands: [BatchRun.self, BatchStatus.self, BatchSlurmScript.self], defaultSubcommand: BatchRun.self)
}

struct BatchRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run this shard's items of MANIFEST.jsonl into --out (the default subcommand).",
        discussion: """
            One task a line, in the workflow task format ({"task": "text2img", "parameters": {...}, "inputs": \
            {...}, "output": "name.png"}); output is optional (item-NNNNNN.png, NNNNNN the item's index from 0) \
            and relative to --out. Each item needs a seed: its own, or --base-seed N (item k gets N + k), so an \
            image never depends on the split. Item k belongs to shard k mod N. The shard is --shard I --of N, or \
            SLURM_ARRAY_TASK_ID (from SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX \
            with --of N. An item whose output exists with the digest recorded for the same task, parameters and \
            inputs is skipped. Outputs are written atomically; results/shard-I-of-N.jsonl records each item (done \
            with the output's SHA-256, or failed with the reason), synced per item. One model server (one worker) \
            serves the whole shard. Exit code 1 if an item failed.
            """)

    @Argument(help: "The manifest: JSON lines, one task a line.") var manifest: String
    @Option(name: .customLong("out"), help: "The batch folder (outputs, results/, batch.json).") var out: String
    @Option(name: .customLong("base-seed"), help: "Seed of item 0 for items without their own; item k: N + k.")
    var baseSeed: Int64?
    @Option(name: .customLong("shard"), help: "This shard's number, from 0.") var shard: Int?
    @Option(name: .customLong("of"), help: "The number of shards.") var shardCount: Int?
    @Flag(name: .customLong("quiet"), help: "No progress output.") var quiet = false
    @Option(name: .customLong("max-memory"), help: "Budget for loaded model weights (e.g. 12G).") var maxMemory: String?
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        _ = try maxMemory.map(parseBytes)
        _ = try compute.resolved()
        let (items, _) = try loadManifest(manifest, baseSeed: baseSeed)
        let (index, count) = try plan { try BatchPlan.shard(given: shard, of: shardCount) }
        let folder = try plan { try BatchFolder((out as NSString).expandingTildeInPath) }
        try plan { try folder.remember(items) }
        let shardName = "\(index)-of-\(count)"
        try plan { try folder.openShard(shardName) }
        let mine = BatchPlan.shard(items, index: index, of: count)
        let records = folder.records()
        let todo = mine.filter { !folder.isDone($0, records: records) }
        report("batch shard \(shardName): \(mine.count) items, \(mine.count - todo.count) already done")
        guard !todo.isEmpty else { return }
        let display = EventDisplay(quiet: quiet)
        let supervisor = makeSupervisor(compute, maxMemory: maxMemory)
        defer { supervisor.stop() }
        let manifestFolder = URL(fileURLWithPath: absolutePath(manifest, in: FileManager.default.currentDirectoryPath))
            .deletingLastPathComponent().path
        var failed = 0
        for (number, item) in todo.enumerated() {
            let output = folder.path + "/" + item.output
            try FileManager.default.createDirectory(
                atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            report("[\(number + 1)/\(todo.count)] item \(item.index) \(item.task) -> \(item.output)")
            let started = Date()
            do {
                let request = WorkerRequest(
                    plugin: item.task, params: item.parameters, inputs: item.inputs, output: output,
                    baseFolder: manifestFolder)
                report(try runTask(request, on: supervisor, display: display))
                guard let digest = folder.digest(of: item.outputs) else {
                    throw CLIError("an output of item \(item.index) is missing after the task")
                }
                try folder.append(
                    BatchRecord(
                        item: item, state: .done, shard: shardName, sha256: digest,
                        seconds: Date().timeIntervalSince(started)))
            } catch {
                failed += 1
                let reason = escapingControlCharacters("\(error)")
                report("error: item \(item.index): \(reason)")
                try? folder.append(BatchRecord(item: item, state: .failed, shard: shardName, error: reason))
                if Interrupt.requested { break }
            }
        }
        if let code = Interrupt.exitCode { throw ExitCode(code) }
        if failed > 0 { throw ExitCode(1) }
    }
}

struct BatchStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Merge the shards' results of a batch folder: done, failed (with the reason), missing.",
        discussion: "Exit code 0 when every item of the latest manifest is done, 1 otherwise.")

    @Argument(help: "The batch folder (--out of the runs).") var folder: String

    func run() throws {
        let batch = try plan { try BatchFolder((folder as NSString).expandingTildeInPath) }
        let statuses = try plan { try batch.status() }
        var done = 0
        var failed: [String] = []
        var missing: [String] = []
        for (entry, status) in statuses {
            switch status {
            case .done: done += 1
            case .failed(let reason): failed.append("  item \(entry.item) \(entry.output): \(reason)")
            case .missing: missing.append("  item \(entry.item) \(entry.output)")
            }
        }
        print("\(statuses.count) items: \(done) done, \(failed.count) failed, \(missing.count) missing")
        if !failed.isEmpty { print("failed:\n" + failed.joined(separator: "\n")) }
        if !missing.isEmpty { print("missing:\n" + missing.joined(separator: "\n")) }
        if done != statuses.count { throw ExitCode(1) }
    }
}

struct BatchSlurmScript: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm-script",
        abstract: "Print an sbatch job-array script that runs MANIFEST.jsonl in --tasks shards.",
        discussion: """
            Submit it with `sbatch script.sh` (or `sbatch --wait`). Each array task runs one shard; a requeued or \
            resubmitted task skips what is done. Logs go to OUT/logs/.
            """)

    @Argument(help: "The manifest.") var manifest: String
    @Option(name: .customLong("out"), help: "The batch folder.") var out: String
    @Option(name: .customLong("tasks"), help: "Array tasks (shards).") var tasks: Int
    @Option(name: .customLong("base-seed"), help: "As for batch run.") var baseSeed: Int64?
    @Option(name: .customLong("partition"), help: "Slurm partition (default: the cluster's).") var partition: String?
    @Option(name: .customLong("time"), help: "Time limit per task (Slurm's format, e.g. 2:00:00).") var time: String?
    @Option(name: .customLong("cpus-per-task"), help: "CPUs per task.") var cpus: Int?
    @Option(name: .customLong("precision"), help: "auto, fp32 or bf16, as for run.") var precision = "auto"

    func run() throws {
        guard tasks >= 1 else { throw CLIError("--tasks \(tasks): at least 1") }
        let (items, manifestPath) = try loadManifest(manifest, baseSeed: baseSeed)
        guard items.count >= tasks else {
            throw CLIError("--tasks \(tasks) is more than the manifest's \(items.count) items")
        }
        let outPath = absolutePath((out as NSString).expandingTildeInPath, in: FileManager.default.currentDirectoryPath)
        var lines = [
            "#!/bin/bash", "#SBATCH --job-name=kandinsky-batch", "#SBATCH --array=0-\(tasks - 1)",
            "#SBATCH --output=\(outPath)/logs/slurm-%A_%a.out", "#SBATCH --requeue",
        ]
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time { lines.append("#SBATCH --time=\(time)") }
        if let cpus { lines.append("#SBATCH --cpus-per-task=\(cpus)") }
        var command = [currentExecutable(), "batch", "run", manifestPath, "--out", outPath, "--of", "\(tasks)"]
        if let baseSeed { command += ["--base-seed", "\(baseSeed)"] }
        command += ["--precision", precision, "--quiet"]
        lines += [
            "# \(items.count) items in \(tasks) shards; item k runs in task k mod \(tasks).",
            "mkdir -p \(shellQuoted(outPath + "/logs"))",
            "exec " + command.map(shellQuoted).joined(separator: " "),
        ]
        // The log folder must exist before Slurm opens the task's log.
        try FileManager.default.createDirectory(atPath: outPath + "/logs", withIntermediateDirectories: true)
        print(lines.joined(separator: "\n"))
    }
}

/// The manifest's items and its absolute path; problems as one-line CLI errors.
func loadManifest(_ manifest: String, baseSeed: Int64?) throws -> ([BatchItem], String) {
    let path = absolutePath((manifest as NSString).expandingTildeInPath, in: FileManager.default.currentDirectoryPath)
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(manifest): file not found") }
    let tasks: [WorkflowFile.Task]
    do {
        tasks = try WorkflowFile.parseManifest(data, name: manifest)
    } catch let problem as WorkflowProblem {
        throw CLIError(problem.description)
    }
    guard !tasks.isEmpty else { throw CLIError("\(manifest): no tasks (one JSON object a line)") }
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let items = try plan { try BatchPlan.items(tasks, manifestFolder: folder, baseSeed: baseSeed) }
    return (items, path)
}

/// A batch problem as a CLI error.
func plan<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let problem as BatchProblem {
        throw CLIError(problem.description)
    }
}

/// A word for sh: single-quoted unless it is plain.
func shellQuoted(_ word: String) -> String {
    let plain = word.unicodeScalars.allSatisfy {
        CharacterSet.alphanumerics.contains($0) || "/._-=:+,".unicodeScalars.contains($0)
    }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
