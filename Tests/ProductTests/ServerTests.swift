// `kandinsky serve` as a client sees it: the real binary on a free loopback port with the embedded default model,
// spoken to with curl (docs/server.md).
import Foundation
import XCTest

/// One server process on a data folder; stopped (or killed) by the test.
final class ServeProcess {
    let process = Process()
    let data: String
    private(set) var port = 0
    let errors: String

    init(data: String, extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        self.data = data
        errors = data + ".stderr-\(UUID().uuidString)"
        process.executableURL = URL(fileURLWithPath: Product.buildDir + "/kandinsky")
        process.arguments = ["serve", "--port", "0", "--data", data] + extraArguments
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = NSTemporaryDirectory()
        env["KANDINSKY_PLUGIN_PATH"] = nil
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        // The first line says where it listens.
        var line = Data()
        while !line.contains(0x0A) {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
            let port = Int(text[range].split(separator: ":").last!)
        else {
            throw SetupError(description: "serve did not say where it listens: '\(text)' \(stderrText)")
        }
        self.port = port
    }

    var stderrText: String { (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "" }

    func stop(signal: Int32 = SIGTERM) {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    struct Reply {
        let status: Int
        let body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// One request through curl; `body` is JSON text, or a file to send with --data-binary @file.
    func request(
        _ method: String, _ path: String, json: String? = nil, file: String? = nil, headers: [String] = [],
        timeout: Int = 60
    ) throws -> Reply {
        let out = data + ".reply-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var args = ["-s", "-m", "\(timeout)", "-o", out, "-w", "%{http_code}", "-X", method]
        for header in headers { args += ["-H", header] }
        if let json { args += ["-H", "Content-Type: application/json", "--data-binary", json] }
        if let file { args += ["--data-binary", "@" + file] }
        args.append("http://127.0.0.1:\(port)" + path)
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = args
        let status = Pipe()
        curl.standardOutput = status
        try curl.run()
        let code = status.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        return Reply(
            status: Int(String(decoding: code, as: UTF8.self)) ?? 0,
            body: FileManager.default.contents(atPath: out) ?? Data())
    }

    /// Polls a job until it has ended; its last view.
    func waitForEnd(_ id: String, seconds: Double = 120) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let job = try request("GET", "/v1/jobs/\(id)").json
            if ["succeeded", "failed", "cancelled"].contains(job["state"] as? String ?? "") { return job }
            usleep(100_000)
        }
        throw SetupError(description: "job \(id) did not end within \(seconds) s")
    }

    /// The python of the client libraries' environment (tools/client-env.sh makes it from PyPI once).
    static func clientPython() throws -> String {
        let made = try Product.command("/bin/bash", [Product.repo + "/tools/client-env.sh"])
        guard made.status == 0, let python = made.output.split(separator: "\n").last.map(String.init) else {
            throw SetupError(description: "tools/client-env.sh could not make the client environment: \(made.output)")
        }
        return python
    }

    func submit(_ params: String, plugin: String = "text2img", inputs: String = "{}", headers: [String] = [])
        throws -> Reply
    {
        try request(
            "POST", "/v1/jobs", json: #"{"plugin": "\#(plugin)", "params": \#(params), "inputs": \#(inputs)}"#,
            headers: headers)
    }
}

final class ServerTests: XCTestCase {
    static let quick =
        #"{"prompt": "a red circle", "num_inference_steps": 2, "prior_num_inference_steps": 2, "seed": 4}"#
    static let slow = #"{"prompt": "a red circle", "num_inference_steps": 150, "prior_num_inference_steps": 2}"#

    func server(_ data: String? = nil) throws -> ServeProcess {
        try Product.requirePlugins()
        return try ServeProcess(data: data ?? (try Product.tempDir() + "/data"))
    }

    func testImagesJobsAndIdempotency() throws {
        let serve = try server()
        defer { serve.stop() }
        XCTAssertEqual(try serve.request("GET", "/healthz").json["status"] as? String, "ok")
        let plugins = try serve.request("GET", "/v1/plugins").json["plugins"] as? [[String: Any]] ?? []
        XCTAssertEqual(
            Set(plugins.compactMap { $0["id"] as? String }),
            ["text2img", "img2img", "inpaint", "fusion", "controlnet-depth", "depth", "outpaint"])

        // An image's id is the SHA-256 of its bytes (checked against coreutils).
        let picture = Product.repo + "/samples/inputs/picture.png"
        let upload = try serve.request("POST", "/v1/images", file: picture)
        XCTAssertEqual(upload.status, 201, upload.text)
        let digest = try Product.cli([], launcher: ["/usr/bin/sha256sum", picture]).stdout.prefix(64)
        XCTAssertEqual(upload.json["id"] as? String, String(digest))
        let back = try serve.request("GET", "/v1/images/\(digest)")
        XCTAssertEqual(back.body, FileManager.default.contents(atPath: picture), "the stored image differs")
        let notImage = try serve.request("POST", "/v1/images", json: "{}")
        XCTAssertEqual(notImage.status, 422, notImage.text)
        XCTAssertEqual(try serve.request("GET", "/v1/images/../../etc/passwd").status, 404)

        let first = try serve.submit(Self.quick, headers: ["Idempotency-Key: once"])
        XCTAssertEqual(first.status, 202, first.text)
        let again = try serve.submit(Self.quick, headers: ["Idempotency-Key: once"])
        XCTAssertEqual(again.status, 200)
        let id = try XCTUnwrap(first.json["id"] as? String)
        XCTAssertEqual(again.json["id"] as? String, id, "a repeated Idempotency-Key made a second job")
        let done = try serve.waitForEnd(id)
        XCTAssertEqual(done["state"] as? String, "succeeded", "\(done)")
        XCTAssertEqual(done["seed"] as? Int, 4)
        let result = try XCTUnwrap((done["results"] as? [String])?.first)
        let png = try serve.request("GET", "/v1/images/\(result)")
        XCTAssertEqual(Array(png.body.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "the result is not a PNG")
        XCTAssertTrue(png.text.contains("kandinsky:seed"), "the result PNG lacks its parameters")
        XCTAssertEqual(try serve.request("DELETE", "/v1/jobs/\(id)").status, 409, "cancel of an ended job")

        // Inpainting with uploaded inputs; a bad parameter is answered 422 naming the field.
        let mask = try serve.request("POST", "/v1/images", file: Product.repo + "/samples/inputs/mask.png")
        let inputs = #"{"image": "\#(digest)", "mask": "\#(mask.json["id"] as? String ?? "")"}"#
        let inpaint = try serve.submit(Self.quick, plugin: "inpaint", inputs: inputs)
        XCTAssertEqual(try serve.waitForEnd(inpaint.json["id"] as? String ?? "")["state"] as? String, "succeeded")
        // num_images: one job, one result per image, image k recording seed + k.
        let series = try serve.submit(Self.quick.replacingOccurrences(of: "}", with: #", "num_images": 2}"#))
        let seriesDone = try serve.waitForEnd(series.json["id"] as? String ?? "")
        let seriesResults = seriesDone["results"] as? [String] ?? []
        XCTAssertEqual(seriesResults.count, 2, "results of a num_images 2 job: \(seriesDone)")
        for (k, result) in seriesResults.enumerated() {
            let image = try serve.request("GET", "/v1/images/\(result)")
            XCTAssertTrue(
                image.text.contains("kandinsky:seed\u{0}\(4 + k)"), "result \(k) does not record seed \(4 + k)")
        }
        let bad = try serve.submit(#"{"prompt": "x", "num_inference_steps": -3}"#)
        XCTAssertEqual(bad.status, 422, bad.text)
        XCTAssertEqual((bad.json["error"] as? [String: Any])?["field"] as? String, "num_inference_steps")
        let missing = try serve.submit(Self.quick, plugin: "inpaint", inputs: #"{"image": "\#(digest)"}"#)
        XCTAssertEqual((missing.json["error"] as? [String: Any])?["field"] as? String, "mask", missing.text)

        // The list pages with a cursor.
        let page = try serve.request("GET", "/v1/jobs?limit=1").json
        XCTAssertEqual((page["jobs"] as? [[String: Any]])?.count, 1)
        let cursor = try XCTUnwrap(page["next_cursor"] as? String)
        let next = try serve.request("GET", "/v1/jobs?limit=5&cursor=\(cursor)").json["jobs"] as? [[String: Any]]
        XCTAssertEqual(next?.first?["id"] as? String, inpaint.json["id"] as? String)

        let metrics = try serve.request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains("kandinsky_jobs{state=\"succeeded\"} 3"), metrics)
        XCTAssertTrue(serve.stderrText.contains("\"job\":\"\(id)\""), "no log line names the job")
    }

    func testHostOriginAndTokenChecks() throws {
        let serve = try server()
        defer { serve.stop() }
        let rebinding = try serve.request("GET", "/v1/jobs", headers: ["Host: attacker.example"])
        XCTAssertEqual(rebinding.status, 421, rebinding.text)
        let crossSite = try serve.submit(Self.quick, headers: ["Origin: http://attacker.example"])
        XCTAssertEqual(crossSite.status, 403, crossSite.text)
        let sameSite = try serve.submit(Self.quick, headers: ["Origin: http://127.0.0.1:\(serve.port)"])
        XCTAssertEqual(sameSite.status, 202, sameSite.text)

        let exposed = try Product.cli(["serve", "--host", "0.0.0.0", "--port", "0", "--data", try Product.tempDir()])
        XCTAssertNotEqual(exposed.status, 0)
        XCTAssertTrue(exposed.stderr.contains("--token"), exposed.stderr)

        let guarded = try ServeProcess(
            data: try Product.tempDir() + "/data", extraArguments: ["--token", "s3cret-token"])
        defer { guarded.stop() }
        XCTAssertEqual(try guarded.request("GET", "/v1/jobs").status, 401)
        XCTAssertEqual(try guarded.request("GET", "/v1/jobs", headers: ["Authorization: Bearer wrong"]).status, 401)
        XCTAssertEqual(
            try guarded.request("GET", "/v1/jobs", headers: ["Authorization: Bearer s3cret-token"]).status, 200)
        XCTAssertEqual(try guarded.request("GET", "/healthz").status, 200)
        // The web editor: its files load without the token; its requests carry the token in a cookie.
        XCTAssertEqual(try guarded.request("GET", "/").status, 200)
        XCTAssertEqual(try guarded.request("GET", "/web/main.js").status, 200)
        let wrongCookie = try guarded.request("GET", "/v1/plugins", headers: ["Cookie: kandinsky_token=wrong"])
        XCTAssertEqual(wrongCookie.status, 401)
        XCTAssertEqual(
            try guarded.request("GET", "/v1/plugins", headers: ["Cookie: a=1; kandinsky_token=s3cret-token"]).status,
            200)
        let cookieCrossSite = try guarded.submit(
            Self.quick, headers: ["Cookie: kandinsky_token=s3cret-token", "Origin: http://attacker.example"])
        XCTAssertEqual(cookieCrossSite.status, 403, "a cross-site POST carrying the cookie: \(cookieCrossSite.text)")
    }

    func testCancelQueuedAndRunningJobsAndResumeEvents() throws {
        let serve = try server()
        defer { serve.stop() }
        let running = try XCTUnwrap(try serve.submit(Self.slow).json["id"] as? String)
        let queued = try XCTUnwrap(try serve.submit(Self.quick).json["id"] as? String)
        XCTAssertEqual(try serve.request("DELETE", "/v1/jobs/\(queued)").status, 200)
        XCTAssertEqual(try serve.request("GET", "/v1/jobs/\(queued)").json["state"] as? String, "cancelled")
        // Wait until the slow one is denoising, then read its events twice: the second read resumes.
        let deadline = Date().addingTimeInterval(60)
        while try serve.request("GET", "/v1/jobs/\(running)").json["stage"] as? String != "decoder",
            Date() < deadline
        {
            usleep(100_000)
        }
        XCTAssertEqual(try serve.request("DELETE", "/v1/jobs/\(running)").status, 202)
        let ended = try serve.waitForEnd(running)
        XCTAssertEqual(ended["state"] as? String, "cancelled", "\(ended)")
        let all = try serve.request("GET", "/v1/jobs/\(running)/events").text
        let ids = all.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        XCTAssertGreaterThan(ids.count, 3, all)
        XCTAssertEqual(ids, Array(1...ids.count), "event ids are not 1, 2, 3, ...")
        let resumed = try serve.request("GET", "/v1/jobs/\(running)/events", headers: ["Last-Event-ID: 2"]).text
        let resumedIDs = resumed.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap {
            Int($0.dropFirst(4))
        }
        XCTAssertEqual(resumedIDs.first, 3, resumed)
        XCTAssertTrue(resumed.contains("\"state\":\"cancelled\""), resumed)
        // The next job runs normally after a cancel.
        let after = try XCTUnwrap(try serve.submit(Self.quick).json["id"] as? String)
        XCTAssertEqual(try serve.waitForEnd(after)["state"] as? String, "succeeded")
    }

    /// kill -9 with one job running and two queued: after a restart all three succeed, the interrupted one on its
    /// second attempt with one result (the old worker died with the server: it cannot finish the job a second time).
    func testQueueSurvivesKill9() throws {
        let data = try Product.tempDir() + "/data"
        let first = try server(data)
        let running = try XCTUnwrap(try first.submit(Self.slow).json["id"] as? String)
        let queued = try (0..<2).map { _ in try XCTUnwrap(try first.submit(Self.quick).json["id"] as? String) }
        let deadline = Date().addingTimeInterval(60)
        while try first.request("GET", "/v1/jobs/\(running)").json["state"] as? String != "running", Date() < deadline {
            usleep(100_000)
        }
        first.stop(signal: SIGKILL)
        let second = try server(data)
        defer { second.stop() }
        // The interrupted job runs first again (it is the oldest), then the queued ones.
        let retried = try second.waitForEnd(running, seconds: 300)
        XCTAssertEqual(retried["state"] as? String, "succeeded", "\(retried)")
        XCTAssertEqual(retried["attempts"] as? Int, 2, "the interrupted job was not retried exactly once")
        XCTAssertEqual((retried["results"] as? [String])?.count, 1)
        for id in queued { XCTAssertEqual(try second.waitForEnd(id, seconds: 300)["state"] as? String, "succeeded") }
    }

    /// Every operation of docs/openapi.json, called with a valid and an invalid request, answers a status the
    /// document lists for it, and its JSON has the fields the document requires of that answer.
    func testTheServerAnswersAsItsOpenAPIDocumentSays() throws {
        let serve = try server()
        defer { serve.stop() }
        let url = URL(fileURLWithPath: Product.repo + "/docs/openapi.json")
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let schemas = ((document["components"] as? [String: Any])?["schemas"] as? [String: Any]) ?? [:]
        let paths = try XCTUnwrap(document["paths"] as? [String: [String: Any]])
        let image = try serve.request("POST", "/v1/images", file: Product.repo + "/samples/inputs/picture.png")
        let job = try serve.submit(Self.quick)
        let imageID = image.json["id"] as? String ?? ""
        let jobID = job.json["id"] as? String ?? ""
        _ = try serve.waitForEnd(jobID)
        // (method, path with values, body, file) per documented operation: a valid call and a broken one.
        var calls: [(String, String, String, String?, String?)] = []
        for (template, operations) in paths {
            for method in operations.keys where ["get", "post", "delete"].contains(method) {
                for (id, body, file) in [
                    (
                        template.contains("images") ? imageID : jobID, "{\"plugin\": \"text2img\", \"params\": {}}",
                        Product.repo + "/samples/inputs/mask.png"
                    ),
                    ("no-such-id", "{\"plugin\": 5}", Product.repo + "/README.md"),
                ] {
                    let path = template.replacingOccurrences(of: "{id}", with: id)
                    let isUpload = template == "/v1/images" && method == "post"
                    calls.append((template, method, path, isUpload ? nil : body, isUpload ? file : nil))
                }
            }
        }
        XCTAssertEqual(calls.count, 2 * 23, "documented operations")
        for (template, method, path, body, file) in calls {
            let operation = try XCTUnwrap(paths[template]?[method] as? [String: Any])
            let responses = try XCTUnwrap(operation["responses"] as? [String: Any])
            let reply = try serve.request(
                method.uppercased(), path, json: method == "post" && file == nil ? body : nil, file: file, timeout: 10)
            let status = String(reply.status)
            XCTAssertNotNil(responses[status], "\(method) \(path): \(status) is not documented (\(reply.text))")
            guard let documented = responses[status] as? [String: Any] else { continue }
            let content = (documented["content"] as? [String: Any])?["application/json"] as? [String: Any]
            var schema = content?["schema"] as? [String: Any]
            if let reference = schema?["$ref"] as? String {
                schema = schemas[reference.components(separatedBy: "/").last!] as? [String: Any]
            }
            if documented["$ref"] != nil { schema = schemas["Error"] as? [String: Any] }
            for field in schema?["required"] as? [String] ?? [] {
                XCTAssertNotNil(reply.json[field], "\(method) \(path) \(status): no '\(field)' in \(reply.text)")
            }
        }
    }

    /// A plugin that segfaults fails its own job with the cause; the next job gets a fresh worker and succeeds.
    func testASegfaultingPluginFailsOnlyItsJob() throws {
        try Product.requirePlugins()
        let plugins = try Product.tempDir()
        _ = try Product.compileC(
            Product.repo + "/Tests/ProductTests/Plugins/crashing.c", to: plugins,
            name: "libkandinsky_plugin_crash_segv.so", defines: ["PLUGIN_ID=\"crash_segv\"", "DIE_SEGV"])
        let serve = try ServeProcess(
            data: try Product.tempDir() + "/data", environment: ["KANDINSKY_PLUGIN_PATH": plugins])
        defer { serve.stop() }
        let crash = try serve.submit("{}", plugin: "crash_segv")
        XCTAssertEqual(crash.status, 202, crash.text)
        let good = try XCTUnwrap(try serve.submit(Self.quick).json["id"] as? String)
        let crashed = try serve.waitForEnd(crash.json["id"] as? String ?? "")
        XCTAssertEqual(crashed["state"] as? String, "failed")
        XCTAssertTrue(
            (crashed["error"] as? String ?? "").contains(
                "killed by SIGSEGV (signal 11) while running plugin crash_segv"),
            "\(crashed)")
        XCTAssertEqual(try serve.waitForEnd(good)["state"] as? String, "succeeded")
        XCTAssertTrue(try serve.request("GET", "/metrics").text.contains("kandinsky_worker_starts_total 2"))
    }

    func testQueueBoundAnswers429() throws {
        try Product.requirePlugins()
        let serve = try ServeProcess(data: try Product.tempDir() + "/data", extraArguments: ["--max-queue", "2"])
        defer { serve.stop() }
        let statuses = try (0..<5).map { _ in try serve.submit(Self.slow).status }
        XCTAssertTrue(statuses.contains(429), "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 202 }.count, 3, "one running and two queued: \(statuses)")
    }

    /// AUTOMATIC1111's client library (webuiapi) and OpenAI's SDK, unchanged, get images back for text-to-image,
    /// image-to-image and inpainting; inpainting keeps every pixel outside the mask; an A1111 interrupt stops its
    /// own request (tools/server_clients.py checks each case).
    func testClientLibrariesGetImagesBack() throws {
        let python = try ServeProcess.clientPython()
        let serve = try server()
        defer { serve.stop() }
        let run = try Product.command(python, [Product.repo + "/tools/server_clients.py", "\(serve.port)"])
        XCTAssertEqual(run.status, 0, run.output + serve.stderrText.suffix(2000))
    }

    /// schemathesis (property-based, from PyPI) against docs/openapi.json finds no answer the document does not
    /// allow (tools/schemathesis.toml says which checks do not apply where, and why).
    func testSchemathesisFindsNothingAgainstTheOpenAPIDocument() throws {
        let python = try ServeProcess.clientPython()
        let serve = try server()
        defer { serve.stop() }
        let run = try Product.command(
            python,
            [
                "-m", "schemathesis.cli", "--config-file", Product.repo + "/tools/schemathesis.toml", "run",
                Product.repo + "/docs/openapi.json", "--url", "http://127.0.0.1:\(serve.port)", "--max-examples", "60",
            ])
        XCTAssertEqual(run.status, 0, String(run.output.suffix(6000)))
        XCTAssertTrue(run.output.contains(" passed"), String(run.output.suffix(2000)))
    }

    /// The compatibility routes refuse what they cannot do with a status and the field, and an A1111 interrupt
    /// leaves a job submitted through /v1/jobs running.
    func testCompatibilityRoutesRefuseClearly() throws {
        let serve = try server()
        defer { serve.stop() }
        let refusals: [(String, String, Int, String)] = [
            ("/sdapi/v1/txt2img", #"{"prompt": "a", "batch_size": 4, "n_iter": 5}"#, 422, "batch_size"),
            ("/sdapi/v1/img2img", #"{"prompt": "a"}"#, 422, "init_images"),
            ("/sdapi/v1/img2img", #"{"prompt": "a", "init_images": ["bm90IGFuIGltYWdl"]}"#, 422, "init_images"),
            ("/sdapi/v1/txt2img", #"{"prompt": "a", "steps": "many"}"#, 400, "steps"),
            ("/sdapi/v1/options", #"{"sd_model_checkpoint": "sd-v1-5"}"#, 422, "sd_model_checkpoint"),
            ("/v1/images/generations", #"{"n": 1}"#, 400, "prompt"),
            ("/v1/images/generations", #"{"prompt": "a", "n": 11}"#, 400, "n"),
            ("/v1/images/generations", #"{"prompt": "a", "size": "big"}"#, 400, "size"),
            ("/v1/images/generations", #"{"prompt": "a", "response_format": "jpeg"}"#, 400, "response_format"),
            ("/v1/images/edits", #"{"prompt": "a"}"#, 400, ""),
        ]
        for (path, body, status, field) in refusals {
            let reply = try serve.request("POST", path, json: body)
            XCTAssertEqual(reply.status, status, "\(path) \(body): \(reply.text)")
            let error = reply.json["error"] as? [String: Any]
            XCTAssertEqual(error?["field"] as? String ?? "", field, "\(path) \(body): \(reply.text)")
        }
        // A mask without an alpha channel cannot say what is transparent.
        let form = [
            "-F", "prompt=a", "-F", "image=@" + Product.repo + "/samples/inputs/picture.png",
            "-F", "mask=@" + Product.repo + "/samples/inputs/mask.png",
        ]
        let edit = try Product.command(
            "/usr/bin/curl", ["-s"] + form + ["http://127.0.0.1:\(serve.port)/v1/images/edits"])
        XCTAssertTrue(edit.output.contains(#""field":"mask""#), edit.output)
        XCTAssertEqual(try serve.request("TRACE", "/v1/jobs").status, 405)

        let job = try XCTUnwrap(try serve.submit(Self.slow).json["id"] as? String)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, try serve.request("GET", "/v1/jobs/\(job)").json["state"] as? String != "running" {
            usleep(100_000)
        }
        XCTAssertEqual(try serve.request("POST", "/sdapi/v1/interrupt").status, 200)
        usleep(500_000)
        let view = try serve.request("GET", "/v1/jobs/\(job)").json
        XCTAssertEqual(view["state"] as? String, "running", "an A1111 interrupt stopped a /v1/jobs job: \(view)")
        XCTAssertEqual(try serve.request("DELETE", "/v1/jobs/\(job)").status, 202)
    }

    /// 50 clients submit 200 small jobs against a queue of 20 (tools/server_load.py): every accepted job succeeds,
    /// a full queue answers clean 429s, one worker served them all and no event stream is left open. The figures
    /// (throughput, latency of GET /v1/jobs/{id}) are printed for docs/server.md.
    func testLoadOf200JobsFrom50Clients() throws {
        try Product.requirePlugins()
        let serve = try ServeProcess(data: try Product.tempDir() + "/data", extraArguments: ["--max-queue", "20"])
        defer { serve.stop() }
        let run = try Product.command(
            "/usr/bin/env",
            ["python3", Product.repo + "/tools/server_load.py", "\(serve.port)", "\(serve.process.processIdentifier)"])
        print("server load: \(run.output)")
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("\"refused_429\": ") && !run.output.contains("\"refused_429\": 0,"),
            "the queue bound was never reached: \(run.output)")
    }

    /// The web editor in headless Chromium and Firefox, driven as a person would (tools/browser_tests.py): the page
    /// and its plugins, an error next to its field, text-to-image, a painted mask's exported pixels, inpaint keeping
    /// the unmasked pixels, fusion with two slider weights, ControlNet from a photo, cancel, and a reload finding a
    /// running job. KANDINSKY_SCREENSHOTS=DIR keeps Chromium's screenshots (docs/gallery.md shows them).
    func testTheWebEditorInChromium() throws {
        try runBrowserTests("chromium", needs: ["/usr/bin/chromium", "/usr/bin/chromedriver"])
    }

    func testTheWebEditorInFirefox() throws {
        try runBrowserTests("firefox", needs: ["/usr/bin/firefox-esr"])
    }

    /// A server started with --token: the page asks for the token, keeps it in its cookie and works.
    func testTheWebEditorSignsInWithTheToken() throws {
        try runBrowserTests("chromium", needs: ["/usr/bin/chromium", "/usr/bin/chromedriver"], token: "s3cret-token")
    }

    func runBrowserTests(_ browser: String, needs binaries: [String], token: String? = nil) throws {
        let python = try ServeProcess.clientPython()
        for binary in binaries where !FileManager.default.fileExists(atPath: binary) {
            throw SetupError(description: "\(binary) is missing: install the browser packages of .ci/run")
        }
        try Product.requirePlugins()
        let serve = try ServeProcess(
            data: try Product.tempDir() + "/data", extraArguments: token.map { ["--token", $0] } ?? [])
        defer { serve.stop() }
        var arguments = [Product.repo + "/tools/browser_tests.py", "\(serve.port)", "--browser", browser]
        if let token { arguments += ["--token", token] }
        if browser == "chromium", let screenshots = ProcessInfo.processInfo.environment["KANDINSKY_SCREENSHOTS"] {
            arguments += ["--screenshots", screenshots]
        }
        let run = try Product.command(python, arguments)
        XCTAssertEqual(run.status, 0, run.output + serve.stderrText.suffix(2000))
    }
}
