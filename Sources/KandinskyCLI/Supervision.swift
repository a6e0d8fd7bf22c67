// The CLI's side of fault isolation: `run` and `workflow` hand their tasks to a worker process (`kandinsky worker`,
// the same program) through a Supervisor, and show the events it sends.
import Foundation
import Supervisor

/// A supervisor whose worker is this program run as `kandinsky worker` with the same compute options.
func makeSupervisor(_ compute: ComputeOptions, maxMemory: String? = nil) -> Supervisor {
    Supervisor(executable: currentExecutable(), arguments: workerArguments(compute, maxMemory: maxMemory))
}

/// The worker's arguments for these options.
func workerArguments(_ compute: ComputeOptions, maxMemory: String?) -> [String] {
    var arguments = ["worker", "--precision", compute.precision]
    if compute.verbose { arguments.append("--verbose") }
    if let maxMemory { arguments += ["--max-memory", maxMemory] }
    return arguments
}

/// This program's own file (CommandLine.arguments[0] may be a bare name found on PATH).
func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Runs one task on `supervisor`'s worker, showing its events: returns the line that says what was written, or
/// throws why the task failed. Notes the task's temporary output for the second-signal cleanup first.
func runTask(_ request: WorkerRequest, on supervisor: Supervisor, display: EventDisplay) throws -> String {
    Interrupt.expectOutput(absolutePath(request.output, in: request.baseFolder),
                           worker: try supervisor.workerProcessID(onEvent: display.show))
    let outcome = supervisor.perform(request, onEvent: display.show)
    display.finish()
    switch outcome {
    case .done(let written, _, _): return written
    case .failed(let reason): throw CLIError(reason)
    }
}

/// Shows a task's events on stderr: notes always, status lines and progress unless quiet.
final class EventDisplay {
    private let progress: ProgressDisplay?

    init(quiet: Bool) {
        Interrupt.installSupervising()
        progress = quiet ? nil : ProgressDisplay()
    }

    func show(_ event: WorkerEvent) {
        switch event.kind {
        case .note:
            if let progress { progress.note(event.message ?? "") } else { report(event.message ?? "") }
        case .status:
            progress?.note(event.message ?? "")
        case .progress:
            progress?.update(stage: event.stage ?? "", step: event.step ?? 0, total: event.total ?? 0)
        default:
            break
        }
    }

    func finish() { progress?.finish() }
}
