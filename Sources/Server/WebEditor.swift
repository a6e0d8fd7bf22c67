// The web editor: plain HTML, CSS and JavaScript in Sources/Server/Web (no build step, nothing fetched at run time),
// served by the server itself at / and /web/NAME. Only names of the folder's own files are served; a request never
// names a path.
import Foundation
import Hummingbird
import ShippedFiles

struct WebEditor: Sendable {
    /// The folder holding index.html, or nil (then / says where it looked).
    let folder: String?
    let searched: [String]

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "svg": "image/svg+xml",
    ]
    /// The page loads only what this server serves; images may also be blob: and data: URLs the page made itself.
    static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; style-src 'self'; script-src 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

    init(executable: URL? = Bundle.main.executableURL) {
        searched = ShippedFiles.candidates(
            variable: "KANDINSKY_WEB", installed: "web", checkout: "Sources/Server/Web", executable: executable)
        folder = searched.first { FileManager.default.fileExists(atPath: $0 + "/index.html") }
    }

    func register(on router: RecordingRouter) {
        router.get("/") { _, _ in try file("index.html") }
        router.get("/web/:name") { _, context in try file(context.parameters.get("name") ?? "") }
    }

    /// A file of the editor by its bare name (letters, digits, '-' and '_', one extension of a served type).
    func file(_ name: String) throws -> Response {
        guard let folder else {
            throw APIError(
                .notFound, "the web editor's files are not installed (looked in \(searched.joined(separator: ", ")))")
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let type = Self.contentTypes[String(parts[1])],
            parts[0].utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }),
            let bytes = FileManager.default.contents(atPath: folder + "/" + name)
        else {
            throw APIError(.notFound, "no file \(name) in the web editor")
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: type, .cacheControl: "no-cache", .contentSecurityPolicy: Self.contentSecurityPolicy,
                .init("X-Content-Type-Options")!: "nosniff",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
}
