// Runs the queue: one thread takes the oldest queued job, hands it to the supervisor's worker (which holds the
// plugins and the one model server, so models stay loaded between jobs) and records the outcome. A worker that dies
// fails only its job; the supervisor starts a fresh one for the next.
import Foundation
import PluginSchema
import Supervisor

#if canImport(Glibc)
    import Glibc
#endif

public final class JobRunner: @unchecked Sendable {
    let store: JobStore
    let images: ImageStore
    let events: JobEvents
    let supervisor: Supervisor
    let dataFolder: String
    let log: (String, String?) -> Void

    private let lock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private var running: (job: String, worker: pid_t)?
    private var lastWorker: pid_t = 0
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var loadedPlugins: [PluginSpec] = []
    private var progressState: (stage: String, started: Date, firstStep: Int)?
    /// The running job's estimate of the seconds left in its current stage (from its step times so far).
    private var runningETA: (job: String, seconds: Double)?
    private var metricsValue = RunnerMetrics()
    public var metrics: RunnerMetrics { lock.withLock { metricsValue } }

    public struct RunnerMetrics: Sendable {
        public var stepSeconds = 0.0
        public var steps = 0
        public var modelLoads = 0
        public var workerStarts = 0
    }

    /// - log: (message, job id) for the structured log.
    public init(
        store: JobStore, images: ImageStore, events: JobEvents, supervisor: Supervisor, dataFolder: String,
        log: @escaping (String, String?) -> Void
    ) {
        self.store = store
        self.images = images
        self.events = events
        self.supervisor = supervisor
        self.dataFolder = dataFolder
        self.log = log
    }

    /// The plugins of the running worker.
    public var plugins: [PluginSpec] { lock.withLock { loadedPlugins } }

    /// Starts the worker (so the plugin list is known before the first request) and the queue thread.
    public func start() throws {
        let worker = try supervisor.workerProcessID { [self] event in note(event, job: nil) }
        lock.withLock {
            loadedPlugins = supervisor.plugins
            metricsValue.workerStarts += 1
            lastWorker = worker
        }
        let thread = Thread { [self] in loop() }
        thread.name = "kandinsky job runner"
        thread.start()
    }

    /// A job was queued.
    public func notify() { wake.signal() }

    /// Stops the job `id` if it is the one running (the worker's cancel: the plugin sees is_cancelled).
    public func stopIfRunning(_ id: String) {
        lock.withLock {
            if let running, running.job == id { kill(running.worker, SIGINT) }
        }
    }

    /// The running job's id, if any.
    public var runningJob: String? { lock.withLock { running?.job } }

    /// Seconds left in the current stage of job `id` while it runs, once two steps have been timed.
    public func eta(of id: String) -> Double? {
        lock.withLock { runningETA?.job == id ? runningETA?.seconds : nil }
    }

    /// Graceful shutdown: takes no new job; a running one is stopped and put back in the queue (it runs again on
    /// the next start, this attempt not counted). Returns once the queue thread has ended.
    public func shutdown() {
        lock.withLock {
            stopping = true
            if let running { kill(running.worker, SIGINT) }
        }
        wake.signal()
        finished.wait()
        supervisor.stop()
    }

    private func loop() {
        while !lock.withLock({ stopping }) {
            let job: Job?
            do {
                job = try store.claimNext()
            } catch {
                log("cannot read the queue: \(error)", nil)
                job = nil
            }
            guard let job else {
                _ = wake.wait(timeout: .now() + 1)
                continue
            }
            run(job)
        }
        finished.signal()
    }

    private func run(_ job: Job) {
        log("started \(job.plugin) (attempt \(job.attempts))", job.id)
        publishState(job.id)
        let request: WorkerRequest
        do {
            request = try workerRequest(for: job)
        } catch {
            end(job.id, state: .failed, error: "\(error)")
            return
        }
        do {
            let worker = try supervisor.workerProcessID { [self] event in note(event, job: job.id) }
            lock.withLock {
                if worker != lastWorker { metricsValue.workerStarts += 1 }
                lastWorker = worker
                running = (job.id, worker)
                loadedPlugins = supervisor.plugins
            }
        } catch {
            end(job.id, state: .failed, error: "\(error)")
            return
        }
        progressState = nil
        let outcome = supervisor.perform(request) { [self] event in note(event, job: job.id) }
        let (stopped, shuttingDown) = lock.withLock { () -> (Bool, Bool) in
            running = nil
            runningETA = nil
            return ((try? store.job(job.id))??.cancelRequested ?? false, stopping)
        }
        switch outcome {
        case .done(_, let parameters, let outputs):
            do {
                // One result per image, in image order (num_images writes a numbered series).
                let results = try (outputs.isEmpty ? [request.output] : outputs).map { try images.addResult(at: $0) }
                end(job.id, state: .succeeded, results: results.map(\.id), parameters: parameters)
            } catch {
                end(job.id, state: .failed, error: "the result could not be stored: \(error)")
            }
        case .failed(let reason):
            let planned = ImageSeries.outputPaths(request.output, count: ImageSeries.count(given: job.params))
            for path in Set([request.output] + planned) { unlink(path) }
            if stopped {
                end(job.id, state: .cancelled, error: "cancelled")
            } else if shuttingDown {
                try? store.requeue(job.id)
                log("put back in the queue: the server is shutting down", job.id)
                publishState(job.id)
            } else {
                end(job.id, state: .failed, error: reason)
            }
        }
        lock.withLock { loadedPlugins = supervisor.plugins }
    }

    /// The task for the worker: inputs as the store's files, the result into data/results.
    private func workerRequest(for job: Job) throws -> WorkerRequest {
        var inputs: [String: String] = [:]
        for (key, id) in job.inputs {
            guard let path = try images.path(of: id) else {
                throw JobError("input '\(key)': no image \(id) (upload it with POST /v1/images)")
            }
            inputs[key] = path
        }
        let results = dataFolder + "/results"
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        return WorkerRequest(
            plugin: job.plugin, params: job.params, inputs: inputs, output: results + "/\(job.id).png",
            baseFolder: dataFolder)
    }

    private func end(
        _ id: String, state: JobState, error: String? = nil, results: [String] = [],
        parameters: [String: String]? = nil
    ) {
        do {
            try store.finish(id, state: state, error: error, results: results, resolvedParams: parameters)
        } catch {
            log("cannot record the end of the job: \(error)", id)
        }
        log(
            state == .succeeded ? "succeeded: \(results.joined(separator: ", "))" : "\(state.rawValue): \(error ?? "")",
            id)
        publishState(id)
    }

    func publishState(_ id: String) {
        guard let job = try? store.job(id) else { return }
        events.publish(id, name: "state", payload: job.view(position: try? store.position(of: job), eta: nil))
    }

    /// A worker event during a job (or at start-up, job nil).
    private func note(_ event: WorkerEvent, job: String?) {
        switch event.kind {
        case .progress:
            guard let job, let stage = event.stage, let step = event.step, let total = event.total else { return }
            let now = Date()
            if progressState?.stage != stage { progressState = (stage, now, step) }
            var eta: Double?
            var perStep: Double?
            if let state = progressState, step > state.firstStep {
                let seconds = now.timeIntervalSince(state.started) / Double(step - state.firstStep)
                perStep = seconds
                eta = seconds * Double(total - step)
            }
            lock.withLock {
                runningETA = eta.map { (job, $0) }
                if let perStep {
                    metricsValue.stepSeconds += perStep
                    metricsValue.steps += 1
                }
            }
            try? store.progress(job, stage: stage, step: step, total: total)
            var payload: [String: Any] = ["stage": stage, "step": step, "total": total]
            payload["eta_seconds"] = eta
            events.publish(job, name: "progress", payload: payload)
        case .status, .note:
            let message = event.message ?? ""
            // The model server says "loading <kind> <folder> (<precision>)" once per model it loads.
            if message.hasPrefix("loading ") { lock.withLock { metricsValue.modelLoads += 1 } }
            log(message, job)
        default:
            break
        }
    }
}

struct JobError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
