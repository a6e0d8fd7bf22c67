// Progress: a bar with stage, step/total and ETA on a terminal; plain lines when stderr is piped. Ctrl-C asks the
// running plugin to stop (it returns "cancelled" and nothing is written).
import Foundation

enum Interrupt {
    nonisolated(unsafe) static var requested = false
    static func install() {
        signal(SIGINT) { _ in
            if Interrupt.requested { _exit(130) }  // a second Ctrl-C leaves at once
            Interrupt.requested = true
        }
    }
}

final class ProgressDisplay {
    let tty = isatty(STDERR_FILENO) != 0
    var stage = ""
    var stageStart = Date()
    var lastPlain = Date.distantPast

    init() { Interrupt.install() }

    func note(_ message: String) {
        if tty { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
        report(message)
    }

    func update(stage s: String, step: Int, total: Int) {
        if s != stage { finishLine(); stage = s; stageStart = Date() }
        let elapsed = Date().timeIntervalSince(stageStart)
        let eta = step > 0 ? elapsed / Double(step) * Double(total - step) : 0
        if tty {
            let width = 30, filled = total > 0 ? width * step / total : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = String(format: "\r\u{1B}[K%@ %@ %d/%d  %.1fs elapsed, ETA %.1fs", s.padding(toLength: 8, withPad: " ", startingAt: 0), bar, step, total, elapsed, eta)
            FileHandle.standardError.write(line.data(using: .utf8)!)
        } else if step == total || Date().timeIntervalSince(lastPlain) > 2 {
            lastPlain = Date()
            report(String(format: "%@ %d/%d (%.1fs, ETA %.1fs)", s, step, total, elapsed, eta))
        }
    }

    func finishLine() { if tty && !stage.isEmpty { FileHandle.standardError.write("\n".data(using: .utf8)!) } }
    func finish() { finishLine(); stage = "" }
}
