// A job: one plugin run asked for over HTTP, as the queue stores it and the API shows it.
import Foundation

public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    var hasEnded: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

public struct Job: Codable, Sendable, Equatable {
    /// "job_" and 20 hex digits, random: not guessable from another job's id.
    public var id: String
    /// Order of submission (the queue's order and the list cursor).
    public var sequence: Int64
    public var plugin: String
    /// Parameter values as text, the way the worker's schema check reads them.
    public var params: [String: String]
    /// Input name -> image id.
    public var inputs: [String: String]
    public var state: JobState
    /// Times the job was started (a job interrupted by a server crash is started once more, then failed).
    public var attempts: Int
    public var stage: String?
    public var step: Int?
    public var total: Int?
    public var seed: Int64?
    public var error: String?
    /// Result image ids.
    public var results: [String]
    /// Every parameter the plugin ran with, defaults and the drawn seed included ("use these parameters again").
    public var resolvedParams: [String: String]?
    public var idempotencyKey: String?
    public var createdAt: Double
    public var startedAt: Double?
    public var finishedAt: Double?
    /// Set by DELETE while the job runs; the runner then stops it.
    public var cancelRequested: Bool

    /// The API's view: what a client reads at GET /v1/jobs/{id}.
    func view(position: Int?, eta: Double?) -> [String: Any] {
        var out: [String: Any] = [
            "id": id, "plugin": plugin, "params": params, "inputs": inputs, "state": state.rawValue,
            "attempts": attempts, "results": results, "created_at": createdAt,
        ]
        out["stage"] = stage
        out["step"] = step
        out["total"] = total
        out["seed"] = seed
        out["error"] = error
        out["resolved_params"] = resolvedParams
        out["started_at"] = startedAt
        out["finished_at"] = finishedAt
        out["queue_position"] = position
        out["eta_seconds"] = eta
        return out
    }
}
