// The routes' paths and methods, recorded as they are registered, so that a known path asked with a method it does
// not serve is answered 405 with an Allow header (RFC 9110 15.5.6) instead of 404.
import Foundation
import HTTPTypes
import Hummingbird

final class RouteTable: @unchecked Sendable {
    private let lock = NSLock()
    private var routes: [(segments: [Substring], method: HTTPRequest.Method)] = []

    func add(_ path: String, _ method: HTTPRequest.Method) {
        lock.withLock { routes.append((path.split(separator: "/"), method)) }
    }

    /// The methods served on `path` (":name" segments match any one segment).
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        return lock.withLock {
            routes.filter { route in
                route.segments.count == segments.count
                    && zip(route.segments, segments).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
            }.map(\.method)
        }
    }
}

/// Registers routes on the router and records them in the table.
struct RecordingRouter {
    let router: Router<BasicRequestContext>
    let table: RouteTable

    typealias Handler<Output> = @Sendable (Request, BasicRequestContext) async throws -> Output

    func on<Output: ResponseGenerator>(
        _ path: String, _ method: HTTPRequest.Method, use handler: @escaping Handler<Output>
    ) {
        table.add(path, method)
        router.on(RouterPath(path), method: method, use: handler)
    }

    func get<Output: ResponseGenerator>(_ path: String, use handler: @escaping Handler<Output>) {
        on(path, .get, use: handler)
    }

    func post<Output: ResponseGenerator>(_ path: String, use handler: @escaping Handler<Output>) {
        on(path, .post, use: handler)
    }

    func delete<Output: ResponseGenerator>(_ path: String, use handler: @escaping Handler<Output>) {
        on(path, .delete, use: handler)
    }
}

struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = table.methods(for: request.uri.path)
            guard !allowed.isEmpty else { throw error }
            let names = allowed.map(\.rawValue).joined(separator: ", ")
            throw APIError(
                .methodNotAllowed, "\(request.method.rawValue) is not served on \(request.uri.path) (only \(names))",
                headers: [.allow: names])
        }
    }
}
