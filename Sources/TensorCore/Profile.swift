// Where the time goes, by kind of work: with KANDINSKY_PROFILE set, the kernels' entry points (convolution, linear
// layers, attention, norms) add their wall time here, and front ends print the totals next to the run's own time.
// Off by default: then each entry point pays one load of a constant.
import Foundation

public enum Profile {
    public enum Category: String, CaseIterable, Sendable {
        case convolution, linear, attention, normalization
    }

    public static let enabled = getenv("KANDINSKY_PROFILE") != nil
    nonisolated(unsafe) private static var seconds = [Double](repeating: 0, count: Category.allCases.count)
    nonisolated(unsafe) private static var calls = [Int](repeating: 0, count: Category.allCases.count)
    private static let lock = NSLock()

    /// Runs `body`, adding its wall time to `category` when profiling is on.
    @inline(__always)
    static func measure<R>(_ category: Category, _ body: () -> R) -> R {
        guard enabled else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let index = Category.allCases.firstIndex(of: category)!
        lock.lock()
        seconds[index] += elapsed
        calls[index] += 1
        lock.unlock()
        return result
    }

    /// The totals as "category seconds calls share" lines, the share taken of `wallSeconds`; "other" is the rest.
    public static func report(wallSeconds: Double) -> String {
        lock.lock()
        defer { lock.unlock() }
        var lines: [String] = []
        for (i, category) in Category.allCases.enumerated() {
            lines.append(String(format: "profile %-13@ %9.2f s %8d calls %5.1f%%", category.rawValue, seconds[i],
                                calls[i],
                                100 * seconds[i] / wallSeconds))
        }
        let rest = wallSeconds - seconds.reduce(0, +)
        lines.append(String(format: "profile %-13@ %9.2f s %14@ %5.1f%%", "other", rest, "", 100 * rest / wallSeconds))
        return lines.joined(separator: "\n")
    }
}
