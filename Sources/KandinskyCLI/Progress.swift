// Progress: a bar with stage, step/total and ETA on a terminal; plain lines when stderr is piped. Ctrl-C (and
// SIGTERM, SIGHUP) asks the running plugin to stop (it returns "cancelled" and nothing is written).
import Foundation
import ImageIO
import Supervisor

/// SIGINT, SIGTERM and SIGHUP cancel the running task, and the process then exits with 128 + the signal, as a
/// shell reports a process that the signal ended. In the supervising process the first signal is passed on to the
/// worker (which cancels its plugin); a second one ends the worker at once, removes the output's temporary file if
/// the worker was writing it, and exits. In the worker a signal only sets the flag: its supervisor decides.
enum Interrupt {
    nonisolated(unsafe) static var requested = false
    nonisolated(unsafe) static var signalNumber: Int32 = 0
    /// The temporary file the running task's worker would write its output to (ImageFiles.temporaryPath), as a C
    /// string the signal handler may use; owned here, replaced per task.
    nonisolated(unsafe) static var pendingTemporaryFile: UnsafeMutablePointer<CChar>?
    static let signals = [SIGINT, SIGTERM, SIGHUP]

    static func installSupervising() {
        for signalNumber in signals {
            signal(signalNumber) { number in
                let worker = Supervisor.runningWorker
                if Interrupt.requested {
                    if worker > 0 { kill(worker, SIGKILL) }
                    if let temporary = Interrupt.pendingTemporaryFile { unlink(temporary) }
                    _exit(128 + number)
                }
                Interrupt.requested = true
                Interrupt.signalNumber = number
                // A terminal's Ctrl-C reaches the worker too (same process group), kill(1) only us: pass it on
                // either way (the worker's handler only sets its flag, so twice is harmless).
                if worker > 0 { kill(worker, SIGTERM) }
            }
        }
    }

    static func installWorker() {
        for signalNumber in signals {
            signal(signalNumber) { number in
                Interrupt.requested = true
                Interrupt.signalNumber = number
            }
        }
    }

    /// 128 + the signal that cancelled; nil when none came.
    static var exitCode: Int32? { signalNumber == 0 ? nil : 128 + signalNumber }

    /// Notes the temporary file of the output the worker `processID` is about to make.
    static func expectOutput(_ path: String, worker processID: Int32) {
        let previous = pendingTemporaryFile
        pendingTemporaryFile = strdup(ImageFiles.temporaryPath(for: path, processID: processID))
        free(previous)
    }
}

/// Where a running task's messages go: the worker sends them over the task protocol, the supervisor side shows them.
protocol TaskEvents {
    /// A line the user always sees (the seed used, the profile).
    func note(_ message: String)
    /// A line shown with progress (model loads).
    func status(_ message: String)
    func update(stage: String, step: Int, total: Int)
}

final class ProgressDisplay {
    let tty = isatty(STDERR_FILENO) != 0
    var stage = ""
    var stageStart = Date()
    var lastPlain = Date.distantPast

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
