// `kandinsky worker`: the process the supervisor starts (Sources/Supervisor). It holds the plugins and the one model
// server, reads task requests on standard input and answers with task-protocol events on standard output, which it
// keeps for the protocol alone (a plugin's printf goes to standard error).
import ArgumentParser
import Foundation
import ModelServer
import PluginHost
import PluginSchema
import Supervisor

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "The worker process of run and workflow (started by them; speaks the task protocol on stdin/stdout).",
        shouldDisplay: false)

    @Option(name: .customLong("max-memory"), help: "Budget for loaded model weights, as for workflow.")
    var maxMemory: String?
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        let channel = EventChannel(descriptor: dup(STDOUT_FILENO))
        dup2(STDERR_FILENO, STDOUT_FILENO)
        Interrupt.installWorker()
        let skipped = ProcessInfo.processInfo.environment[Supervisor.skipVariable]
            .map { Set($0.split(separator: ":").map(String.init)) } ?? []
        let registry = try startHost(compute, skipping: skipped,
                                     willLoad: { channel.send(WorkerEvent(kind: .loading, library: $0)) },
                                     didLoad: { channel.send(WorkerEvent(kind: .loaded, library: $0)) })
        ServerABI.server?.maxMemory = try maxMemory.map(parseBytes)
        watchSupervisor()
        channel.send(WorkerEvent(kind: .ready, plugins: registry.plugins))
        let requests = LineReader(descriptor: STDIN_FILENO)
        while let line = requests.nextLine() {
            // A cancel is meant for the task that was running when it came; the next task starts afresh.
            Interrupt.requested = false
            let answer: WorkerEvent
            do {
                let request = try JSONDecoder().decode(WorkerRequest.self, from: Data(line.utf8))
                let (message, parameters, outputs) = try perform(request, registry: registry, channel: channel)
                answer = WorkerEvent(kind: .done, message: message, parameters: parameters, outputs: outputs)
            } catch {
                answer = WorkerEvent(kind: .failed, message: "\(error)")
            }
            ServerABI.server?.trim()
            channel.send(answer)
        }
    }

    /// Ends this process when its supervisor is gone (a kill -9 of the server leaves no one to read the result,
    /// and a restarted server runs the job again): the parent changes when the supervisor dies.
    private func watchSupervisor() {
        let supervisor = getppid()
        Thread.detachNewThread {
            while getppid() == supervisor { usleep(200_000) }
            _exit(70)
        }
    }

    private func perform(_ request: WorkerRequest, registry: PluginRegistry, channel: EventChannel) throws
        -> (message: String, parameters: [String: String], outputs: [String])
    {
        guard let spec = registry.plugin(named: request.plugin) else {
            let names = registry.plugins.flatMap { [$0.id] + $0.aliases }
            let suggestion = closestName(request.plugin, in: names).map { "; did you mean '\($0)'?" } ?? ""
            let known = names.isEmpty ? " (no plugins found)"
                : " (known: \(registry.plugins.map(\.id).joined(separator: ", ")))"
            throw CLIError("unknown plugin '\(request.plugin)'" + suggestion + known)
        }
        channel.send(WorkerEvent(kind: .started, library: spec.library, message: spec.id))
        var params = request.params
        var inputs = request.inputs
        if request.splitInputs {
            for key in params.keys where spec.takesInput(key) { inputs[key] = params.removeValue(forKey: key) }
        }
        if params["invert_mask"] != nil && !spec.params.contains(where: { $0.key == "invert_mask" }) {
            throw CLIError("\(spec.id) has no mask to invert")
        }
        let task = Task(spec: spec, params: params, inputs: inputs, output: request.output,
                        baseFolder: request.baseFolder)
        return try task.execute(registry: registry, events: channel)
    }
}

/// The worker's side of the task protocol: events written whole, one per line, from any thread.
final class EventChannel: TaskEvents, @unchecked Sendable {
    private let descriptor: Int32
    private let lock = NSLock()

    init(descriptor: Int32) { self.descriptor = descriptor }

    func send(_ event: WorkerEvent) {
        lock.withLock { _ = writeLine(event, to: descriptor) }
    }

    func note(_ message: String) { send(WorkerEvent(kind: .note, message: message)) }
    func status(_ message: String) { send(WorkerEvent(kind: .status, message: message)) }
    func update(stage: String, step: Int, total: Int) {
        send(WorkerEvent(kind: .progress, stage: stage, step: step, total: total))
    }
}
