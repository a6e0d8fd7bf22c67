// Who may talk to the server. Loopback by default; another address needs a bearer token (or --insecure). Every
// request must name this server in Host (a DNS-rebinding page names its own host), and a state-changing request
// coming from a browser must come from this server's own origin (no cross-site POST or DELETE).
import Foundation
import HTTPTypes
import Hummingbird

struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    /// Host header values accepted (host or host:port, lowercased); nil = any (a server bound beyond loopback,
    /// where the token is what keeps other sites out).
    let allowedHosts: Set<String>?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let host = request.head.authority?.lowercased() ?? ""
        if let allowedHosts, !allowedHosts.contains(host), !allowedHosts.contains(Self.hostName(host)) {
            throw APIError(.misdirectedRequest, "Host '\(host)' is not this server (DNS rebinding is refused)")
        }
        if request.method != .get && request.method != .head && request.method != .options {
            if let origin = request.headers[.origin] {
                let sameOrigin = ["http://" + host, "https://" + host].contains(origin.lowercased())
                guard sameOrigin else {
                    throw APIError(.forbidden, "cross-site request from Origin '\(origin)' refused")
                }
            }
            if request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site" {
                throw APIError(.forbidden, "cross-site request refused (Sec-Fetch-Site)")
            }
        }
        if let token, !Self.isPublic(request.uri.path) {
            let bearer = request.headers[.authorization] ?? ""
            let cookie = Self.cookie(Self.tokenCookie, in: request.headers[values: .cookie]) ?? ""
            // Both compared in full, so the time taken does not say which one came close.
            let byHeader = Self.constantTimeEqual(bearer, "Bearer " + token)
            let byCookie = Self.constantTimeEqual(cookie, token)
            guard byHeader || byCookie else {
                throw APIError(
                    .unauthorized, "a bearer token is required (Authorization: Bearer <token>)",
                    headers: [.wwwAuthenticate: "Bearer"])
            }
        }
        return try await next(request, context)
    }

    /// The cookie the web editor keeps the token in (SameSite=Strict: a browser never sends it cross-site, and
    /// state-changing requests must come from this origin anyway). An EventSource cannot send a header.
    static var tokenCookie: String { "kandinsky_token" }

    /// Reachable without the token: the health check and the editor's own files, which hold no data (the page
    /// then asks for the token).
    static func isPublic(_ path: String) -> Bool {
        path == "/healthz" || path == "/" || path.hasPrefix("/web/")
    }

    /// The value of cookie `name` in Cookie headers ("a=1; b=2"), percent-decoded.
    static func cookie(_ name: String, in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == name { return parts[1].removingPercentEncoding ?? parts[1] }
            }
        }
        return nil
    }

    /// The host part of host:port (brackets of an IPv6 literal kept).
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[...close])
        }
        return authority.split(separator: ":", maxSplits: 1).first.map(String.init) ?? authority
    }

    /// Compares in time that depends on the lengths only, not on where the first difference is.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
