// `kandinsky serve`: the HTTP front end. It holds the queue (SQLite under --data), the image store and one
// supervisor whose worker runs every job; it links no engine.
import Foundation
import Hummingbird
import Logging
import Supervisor

public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 7860
    public var dataFolder: String
    public var token: String?
    public var insecure = false
    /// Jobs that may wait; one more is answered 429.
    public var maxQueuedJobs = 100
    /// A JSON request body (the compatibility routes carry base64 images in it).
    public var maxRequestBytes = 48 << 20
    /// An uploaded image file.
    public var maxUploadBytes = 32 << 20
    public var retryAfterSeconds = 5
    /// The worker's command line.
    public var workerExecutable: String
    public var workerArguments: [String]

    public init(dataFolder: String, workerExecutable: String, workerArguments: [String]) {
        self.dataFolder = dataFolder
        self.workerExecutable = workerExecutable
        self.workerArguments = workerArguments
    }

    static let loopbackHosts: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]

    /// The refusal of an exposed address without a token, or nil.
    public func exposureProblem() -> String? {
        if Self.loopbackHosts.contains(host) || token != nil || insecure { return nil }
        return "--host \(host) exposes the server beyond this machine: give --token T (clients then send "
            + "'Authorization: Bearer T') or --insecure"
    }
}

public enum KandinskyServer {
    /// Runs until SIGTERM or SIGINT: then stops accepting, puts a running job back in the queue and returns.
    public static func run(_ configuration: ServerConfiguration) async throws {
        if let problem = configuration.exposureProblem() { throw JobError(problem) }
        let data = configuration.dataFolder
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let store = try JobStore(path: data + "/queue.sqlite")
        let images = try ImageStore(dataFolder: data, store: store, maxBytes: configuration.maxUploadBytes)
        for job in try store.recover() { log("not retried: \(job.error ?? "interrupted twice")", job: job.id) }
        let events = JobEvents()
        let supervisor = Supervisor(
            executable: configuration.workerExecutable, arguments: configuration.workerArguments)
        let runner = JobRunner(
            store: store, images: images, events: events, supervisor: supervisor, dataFolder: data,
            log: { message, job in log(message, job: job) })
        try runner.start()

        let router = Router(context: BasicRequestContext.self)
        var allowedHosts: Set<String>?
        if ServerConfiguration.loopbackHosts.contains(configuration.host) {
            allowedHosts = Set(ServerConfiguration.loopbackHosts.flatMap { [$0, "\($0):\(configuration.port)"] })
        }
        let routes = Routes(store: store, images: images, events: events, runner: runner, configuration: configuration)
        router.middlewares.add(AccessMiddleware(token: configuration.token, allowedHosts: allowedHosts))
        let table = RouteTable()
        router.middlewares.add(MethodNotAllowedMiddleware(table: table))
        let recording = RecordingRouter(router: router, table: table)
        routes.register(on: recording)
        A1111Routes(routes: routes).register(on: recording)
        OpenAIImagesRoutes(routes: routes).register(on: recording)
        WebEditor().register(on: recording)
        var logger = Logger(label: "kandinsky.serve")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                print("kandinsky serve: listening on http://\(configuration.host):\(port) (data \(data))")
                fflush(stdout)
            },
            logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        log("shutting down", job: runner.runningJob)
        runner.shutdown()
        log("stopped", job: nil)
    }

    /// One JSON line on standard error per message; `job` names the job it concerns.
    static func log(_ message: String, job: String?) {
        var entry: [String: Any] = ["time": ISO8601DateFormatter().string(from: Date()), "message": message]
        entry["job"] = job
        if let data = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) {
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }
}
