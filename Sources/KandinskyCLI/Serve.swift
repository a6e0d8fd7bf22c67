// `kandinsky serve`: a local image server (Sources/Server; docs/server.md).
import ArgumentParser
import Foundation
import Server

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the image server: the web editor and an HTTP API with a durable job queue.",
        discussion: """
            Open the printed address in a browser for the editor (masks, fusion weights, ControlNet, every \
            plugin's form). The API is ours (/v1/jobs, /v1/images, ...), AUTOMATIC1111's (/sdapi/v1/txt2img, \
            img2img, progress, interrupt) and OpenAI's Images API (/v1/images/generations, /v1/images/edits), all \
            on one queue; one worker keeps the models loaded. Jobs are kept in SQLite under --data and survive a \
            restart. Loopback only unless --host names another address, which needs --token (clients send \
            'Authorization: Bearer T'; the web editor asks for it) or --insecure. Routes and curl \
            examples: docs/server.md; the OpenAPI document: docs/openapi.json.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed at start).") var port = 7860
    @Option(help: "Folder for the queue database, images and results.") var data = "kandinsky-data"
    @Option(help: "Bearer token every request (but /healthz) must carry.") var token: String?
    @Flag(help: "Allow a non-loopback --host without a token.") var insecure = false
    @Option(help: "Jobs that may wait in the queue; more are answered 429.") var maxQueue = 100
    @Option(name: .customLong("max-memory"), help: "Budget for loaded model weights (e.g. 12G), as for workflow.")
    var maxMemory: String?
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port): expected 0 to 65535") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue \(maxQueue): expected at least 1") }
        if let token, token.count < 8 { throw ValidationError("--token: use at least 8 characters") }
    }

    func run() throws {
        if let maxMemory { _ = try parseBytes(maxMemory) }
        var configuration = ServerConfiguration(
            dataFolder: absolutePath(data, in: FileManager.default.currentDirectoryPath),
            workerExecutable: currentExecutable(), workerArguments: workerArguments(compute, maxMemory: maxMemory))
        configuration.host = host
        configuration.port = port
        configuration.token = token
        configuration.insecure = insecure
        configuration.maxQueuedJobs = maxQueue
        let done = DispatchSemaphore(value: 0)
        let failure = ServeFailure()
        _Concurrency.Task {
            do {
                try await KandinskyServer.run(configuration)
            } catch {
                failure.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = failure.error { throw CLIError("serve: \(error)") }
    }
}

/// Carries the server's error out of its task.
final class ServeFailure: @unchecked Sendable {
    var error: Error?
}
