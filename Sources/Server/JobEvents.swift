// Each job's events for GET /v1/jobs/{id}/events: numbered from 1 per job, kept in memory (the last ones of each
// job, bounded), handed to subscribers as they happen. A client that reconnects with Last-Event-ID gets what it
// missed; after a server restart the numbering goes on from the client's id with a snapshot of the job.
import Foundation

public struct JobEvent: Sendable, Equatable {
    public let sequence: Int
    /// "state" (the whole job, on every change of state) or "progress" (stage, step, total, eta).
    public let name: String
    /// JSON.
    public let data: String

    /// The event as server-sent-events text.
    var wireText: String { "id: \(sequence)\nevent: \(name)\ndata: \(data)\n\n" }
}

public final class JobEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var logs: [String: [JobEvent]] = [:]
    private var nextSequence: [String: Int] = [:]
    private var subscribers: [String: [UUID: AsyncStream<JobEvent>.Continuation]] = [:]
    /// Events kept per job; progress beyond it drops the oldest (a client that far behind gets the snapshot).
    static let keptPerJob = 256

    public init() {}

    public func publish(_ jobID: String, name: String, payload: [String: Any]) {
        let data =
            (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let (event, listeners) = lock.withLock { () -> (JobEvent, [AsyncStream<JobEvent>.Continuation]) in
            let sequence = nextSequence[jobID, default: 1]
            nextSequence[jobID] = sequence + 1
            let event = JobEvent(sequence: sequence, name: name, data: data)
            var log = logs[jobID, default: []]
            log.append(event)
            if log.count > Self.keptPerJob { log.removeFirst(log.count - Self.keptPerJob) }
            logs[jobID] = log
            return (event, Array(subscribers[jobID, default: [:]].values))
        }
        for listener in listeners { listener.yield(event) }
    }

    /// What the job's log holds after `lastSeen`, and a stream of what comes next; `cancel` ends the stream. When
    /// this process has nothing of the job newer than `lastSeen` logged (a restart, or a job that ended before),
    /// `backlog` is empty and `restartAt` says where the caller's snapshot must continue the numbering.
    func subscribe(_ jobID: String, after lastSeen: Int) -> (
        backlog: [JobEvent], stream: AsyncStream<JobEvent>, cancel: @Sendable () -> Void
    ) {
        let token = UUID()
        var continuation: AsyncStream<JobEvent>.Continuation!
        let stream = AsyncStream<JobEvent>(bufferingPolicy: .bufferingNewest(Self.keptPerJob)) { continuation = $0 }
        let backlog: [JobEvent] = lock.withLock {
            subscribers[jobID, default: [:]][token] = continuation
            if nextSequence[jobID, default: 1] <= lastSeen { nextSequence[jobID] = lastSeen + 1 }
            return logs[jobID, default: []].filter { $0.sequence > lastSeen }
        }
        let cancel: @Sendable () -> Void = { [weak self] in
            guard let self else { return }
            let ended = self.lock.withLock { self.subscribers[jobID]?.removeValue(forKey: token) }
            ended?.finish()
        }
        return (backlog, stream, cancel)
    }

    /// Subscribers now connected (for /metrics and the leak check of the load test).
    var subscriberCount: Int { lock.withLock { subscribers.values.reduce(0) { $0 + $1.count } } }
}
