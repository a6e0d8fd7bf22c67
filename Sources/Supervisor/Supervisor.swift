// Fault isolation for every front end: the plugins and the one model server live in a worker process; the
// supervisor starts it, hands it tasks over the task protocol (WorkerProtocol.swift) and watches it. When the
// worker dies (a signal, exit, abort) the task it was running fails with a reason naming the plugin and the signal,
// and the next task gets a fresh worker. A plugin library whose init crashes the worker at start-up is skipped (the
// worker is told with KANDINSKY_SKIP_PLUGINS) and start-up is tried again. The CLI's `run` and `workflow` use it;
// a long-running server can keep one supervisor for its life.
import Foundation
import PluginSchema

#if canImport(Glibc)
    import Glibc
#endif

public final class Supervisor {
    public enum Outcome: Equatable, Sendable {
        /// The worker's `done` message (what it wrote), the parameters the plugin ran with and the files written.
        case done(String, parameters: [String: String], outputs: [String])
        /// Why the task failed: the plugin's or the host's error, or how the worker died.
        case failed(String)
    }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The environment variable through which the worker learns which plugin libraries to leave out.
    public static let skipVariable = "KANDINSKY_SKIP_PLUGINS"

    /// The pid of the worker now running a task (0: none), for a signal handler that passes a cancel on (reading an
    /// Int32 is safe there). With several supervisors in one process it is the last one to start a task.
    nonisolated(unsafe) public static var runningWorker: pid_t = 0

    /// The pid of this supervisor's worker, starting one if none runs (the first task would); `onEvent` as for
    /// `start`.
    public func workerProcessID(onEvent: (WorkerEvent) -> Void = { _ in }) throws -> pid_t {
        try start(onEvent: onEvent)
        return worker!.pid
    }

    private let executable: String
    private let arguments: [String]
    private let environment: [String: String]
    /// The plugins the current (or last) worker loaded, from its `ready` event.
    public private(set) var plugins: [PluginSpec] = []
    /// Libraries left out because their init crashed a worker, with why; in the order found.
    public private(set) var skipped: [(library: String, reason: String)] = []
    private var worker: WorkerProcess?

    /// - executable, arguments: the worker's command line (the CLI runs itself with `worker ...`).
    public init(
        executable: String, arguments: [String],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        // A write to a worker that just died must fail with EPIPE, not end the supervisor.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit { stop() }

    /// Starts a worker now if none is running (else the first task does); `onEvent` sees start-up notes.
    public func start(onEvent: (WorkerEvent) -> Void = { _ in }) throws {
        if worker == nil { worker = try startWorker(onEvent: onEvent) }
    }

    /// Runs one task on the worker, starting one first if needed. Events other than the final one go to `onEvent`.
    public func perform(_ request: WorkerRequest, onEvent: (WorkerEvent) -> Void) -> Outcome {
        let current: WorkerProcess
        do {
            if worker == nil { worker = try startWorker(onEvent: onEvent) }
            current = worker!
        } catch {
            return .failed("\(error)")
        }
        var plugin = request.plugin
        var library: String?
        Supervisor.runningWorker = current.pid
        defer { Supervisor.runningWorker = 0 }
        if writeLine(request, to: current.input) {
            while let event = current.nextEvent() {
                switch event.kind {
                case .done:
                    return .done(event.message ?? "", parameters: event.parameters ?? [:], outputs: event.outputs ?? [])
                case .failed: return .failed(event.message ?? "failed")
                case .started:
                    plugin = event.message ?? plugin
                    library = event.library
                default: onEvent(event)
                }
            }
        }
        // The worker ended mid-task (or closed its output: then it is ended here): say how, and leave the next task
        // a fresh one.
        let death = current.waitForExit(killing: true)
        worker = nil
        let where_ = library.map { " (\($0))" } ?? ""
        return .failed(
            "the worker process \(death) while running plugin \(plugin)\(where_); the next task gets a "
                + "fresh worker")
    }

    /// Ends the worker: closes its input (it exits when it reads end of file) and waits.
    public func stop() {
        guard let current = worker else { return }
        worker = nil
        _ = current.waitForExit()
    }

    private func startWorker(onEvent: (WorkerEvent) -> Void) throws -> WorkerProcess {
        // Each failed start skips one library, so there are at most as many retries as libraries (bounded anyway).
        for _ in 0..<256 {
            var env = environment
            if !skipped.isEmpty { env[Supervisor.skipVariable] = skipped.map(\.library).joined(separator: ":") }
            let candidate = try WorkerProcess(executable: executable, arguments: arguments, environment: env)
            var initialising: String?
            while let event = candidate.nextEvent() {
                switch event.kind {
                case .loading: initialising = event.library
                case .loaded: initialising = nil
                case .ready:
                    plugins = event.plugins ?? []
                    return candidate
                default: onEvent(event)
                }
            }
            let death = candidate.waitForExit(killing: true)
            guard let library = initialising else {
                throw StartError(
                    description: "the worker process \(death) while starting (before or after loading "
                        + "its plugins)")
            }
            let reason = "its init crashed the worker process (\(death))"
            skipped.append((library, reason))
            onEvent(WorkerEvent(kind: .note, message: "warning: skipping plugin \(library): \(reason)"))
        }
        throw StartError(description: "the worker process kept dying while loading its plugins")
    }
}

/// A running worker: its pid, the write end of its standard input and a reader on its standard output.
final class WorkerProcess {
    let pid: pid_t
    let input: Int32
    let output: LineReader
    private let outputDescriptor: Int32
    private var exitDescription: String?

    init(executable: String, arguments: [String], environment: [String: String]) throws {
        var toWorker: [Int32] = [0, 0]
        var fromWorker: [Int32] = [0, 0]
        guard pipe(&toWorker) == 0, pipe(&fromWorker) == 0 else {
            throw Supervisor.StartError(
                description: "cannot make pipes for the worker: \(String(cString: strerror(errno)))")
        }
        // The worker starts with every signal unblocked and at its default action: a thread of a front end's
        // thread pool (libdispatch blocks signals in its workers) would otherwise pass its mask on, and SIGINT, the
        // cancel of a running task, would never arrive.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var handledSignals = sigset_t()
        sigemptyset(&handledSignals)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&handledSignals, signalNumber) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &handledSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toWorker[0], STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, fromWorker[1], STDOUT_FILENO)
        for descriptor in toWorker + fromWorker { posix_spawn_file_actions_addclose(&actions, descriptor) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        close(toWorker[0])
        close(fromWorker[1])
        guard status == 0 else {
            close(toWorker[1])
            close(fromWorker[0])
            throw Supervisor.StartError(
                description: "cannot start the worker \(executable): "
                    + String(cString: strerror(status)))
        }
        // The supervisor's ends must not leak into workers started later (they would keep a pipe open).
        _ = fcntl(toWorker[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fromWorker[0], F_SETFD, FD_CLOEXEC)
        pid = child
        input = toWorker[1]
        outputDescriptor = fromWorker[0]
        output = LineReader(descriptor: fromWorker[0])
    }

    deinit {
        close(outputDescriptor)
    }

    /// The worker's next event, skipping lines that are not one; nil once its output ends.
    func nextEvent() -> WorkerEvent? {
        while let line = output.nextLine() {
            if let event = try? JSONDecoder().decode(WorkerEvent.self, from: Data(line.utf8)) { return event }
        }
        return nil
    }

    /// Waits for the worker to end and says how: "was killed by SIGSEGV (signal 11)", "exited with status 0".
    /// Its input is closed first (a healthy worker exits at end of input); `killing` ends one that is still running
    /// (used once its output has ended: a dead worker is unaffected, its status is already fixed).
    func waitForExit(killing: Bool = false) -> String {
        if let exitDescription { return exitDescription }
        close(input)
        if killing { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let description: String
        if status & 0x7F == 0 {
            description = "exited with status \((status >> 8) & 0xFF)"
        } else {
            let signalNumber = status & 0x7F
            description = "was killed by \(signalName(signalNumber)) (signal \(signalNumber))"
        }
        exitDescription = description
        return description
    }
}

/// SIGSEGV, SIGABRT, ... for the signals a crashing plugin raises; "signal N" for the rest.
func signalName(_ number: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV",
        SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM", SIGXCPU: "SIGXCPU",
    ]
    return names[number] ?? "signal \(number)"
}
