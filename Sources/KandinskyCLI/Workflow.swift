// `kandinsky workflow FILE.json`: several tasks in one process, sharing the model server (each model loads once).
import ArgumentParser
import Foundation
import ModelServer
import PluginHost
import Supervisor
import WorkflowFormat

struct Workflow: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the tasks of a workflow file in one process.",
        discussion: """
        Format: {"tasks": [{"task": "inpaint", "parameters": {"prompt": "a cat", "seed": "11"}, \
        "inputs": {"image": "in.png", "mask": "mask.png"}, "output": "out.png"}]}. Tasks are plugin ids or \
        Ikomia's names (infer_kandinsky_2, ..._img2img, ..._inpaint, ..._image_mixing, ..._controlnet_depth). \
        Parameter values are strings or JSON numbers (weights also a JSON list). Relative paths resolve against \
        the workflow file's folder. Any other key is an error, as are two tasks writing one file. A failing \
        task does not stop the others, even one whose plugin crashes (the tasks run in a worker process that is \
        restarted after a crash); the exit code is 1 if any failed. SIGINT, SIGTERM and SIGHUP cancel the running \
        task and stop the workflow with exit code 128 + the signal.
        """)

    @Argument(help: "The workflow JSON file.") var file: String
    @Flag(name: .customLong("quiet"), help: "No progress output.") var quiet = false
    @Option(name: .customLong("max-memory"), help: "Budget for loaded model weights (e.g. 12G); least recently used models are dropped between tasks to stay under it.")
    var maxMemory: String?
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        _ = try maxMemory.map(parseBytes)  // refused here, before a worker starts
        let path = (file as NSString).expandingTildeInPath
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(file): file not found") }
        let tasks: [WorkflowFile.Task]
        do {
            tasks = try WorkflowFile.parse(data, name: file).tasks
        } catch let problem as WorkflowProblem {
            throw CLIError(problem.description)
        }
        guard !tasks.isEmpty else { throw CLIError("\(file): the \"tasks\" list is empty") }
        let folderOfFile = URL(fileURLWithPath: path).deletingLastPathComponent()
        // Two tasks writing one file would overwrite each other: refuse before anything runs.
        var writers: [String: Int] = [:]
        for (n, task) in tasks.enumerated() {
            let resolved = URL(fileURLWithPath: task.output, relativeTo: folderOfFile).standardizedFileURL.path
            if let first = writers[resolved] {
                throw CLIError("\(file): tasks \(first + 1) and \(n + 1) both write \(task.output)")
            }
            writers[resolved] = n
        }
        _ = try compute.resolved()
        let display = EventDisplay(quiet: quiet)
        let supervisor = makeSupervisor(compute, maxMemory: maxMemory)
        defer { supervisor.stop() }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var failed = 0
        for (n, task) in tasks.enumerated() {
            let label = "\(file) task \(n + 1)"
            do {
                report("[\(n + 1)/\(tasks.count)] \(task.task) -> \(task.output)")
                let request = WorkerRequest(plugin: task.task, params: task.parameters, inputs: task.inputs,
                                            output: task.output, baseFolder: folder)
                report(try runTask(request, on: supervisor, display: display))
            } catch {
                failed += 1
                report("error: \(label): \(escapingControlCharacters("\(error)"))")
                if Interrupt.requested { break }
            }
        }
        if let code = Interrupt.exitCode { throw ExitCode(code) }
        if failed > 0 { throw ExitCode(1) }
    }
}
