// The supervisor and its worker (Sources/Supervisor, `kandinsky worker`): a plugin that segfaults, aborts or calls
// exit(0) in run() fails its own task with a reason naming the plugin and the signal, and the other tasks of the
// workflow complete on a fresh worker; a plugin whose init() crashes is skipped with a warning naming the library.
// The crashing plugins are Tests/ProductTests/Plugins/crashing.c, compiled per test.
import Foundation
import XCTest

final class FaultIsolationTests: XCTestCase {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Plugins/crashing.c").path

    /// Compiles crashing.c as plugin `id` dying the way `mode` says (DIE_SEGV, DIE_ABORT, DIE_EXIT, DIE_IN_INIT).
    func crashingPlugin(_ id: String, _ modes: [String], in dir: String) throws -> String {
        try Product.compileC(Self.source, to: dir, name: "libkandinsky_plugin_\(id).so",
                             defines: ["PLUGIN_ID=\"\(id)\""] + modes)
    }

    func testCrashingPluginsFailTheirTasksAndTheOthersComplete() throws {
        let dir = try Product.tempDir()
        let plugins = dir + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        _ = try crashingPlugin("crash_segv", ["DIE_SEGV"], in: plugins)
        _ = try crashingPlugin("crash_abort", ["DIE_ABORT"], in: plugins)
        _ = try crashingPlugin("crash_exit", ["DIE_EXIT"], in: plugins)
        let good = #"{"task": "text2img", "parameters": {"prompt": "a cat", "seed": 5, "num_inference_steps": 2, "#
            + #""prior_num_inference_steps": 2}, "output": "OUT"}"#
        let tasks = [
            #"{"task": "crash_segv", "output": "segv.png"}"#, good.replacingOccurrences(of: "OUT", with: "a.png"),
            #"{"task": "crash_abort", "output": "abort.png"}"#, #"{"task": "crash_exit", "output": "exit.png"}"#,
            good.replacingOccurrences(of: "OUT", with: "b.png"),
        ]
        try #"{"tasks": [\#(tasks.joined(separator: ", "))]}"#.write(toFile: dir + "/wf.json", atomically: true,
                                                                      encoding: .utf8)
        let r = try Product.cli(["workflow", "--quiet", dir + "/wf.json"],
                                environment: ["KANDINSKY_PLUGIN_PATH": plugins])
        XCTAssertEqual(r.status, 1, "exit status of a workflow with three failed tasks; stderr: \(r.stderr)")
        for (task, plugin, death) in [(1, "crash_segv", "was killed by SIGSEGV (signal 11)"),
                                      (3, "crash_abort", "was killed by SIGABRT (signal 6)"),
                                      (4, "crash_exit", "exited with status 0")] {
            XCTAssertTrue(r.stderr.contains("task \(task): the worker process \(death) while running plugin \(plugin)"),
                          "task \(task) (\(plugin)) reported as dying: \(death); stderr: \(r.stderr)")
        }
        for output in ["a.png", "b.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + output),
                          "\(output), written by the text2img task after a crash; stderr: \(r.stderr)")
        }
        for output in ["segv.png", "abort.png", "exit.png"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/" + output), "\(output) of a crashed task")
        }
    }

    func testPluginWhoseInitCrashesIsSkippedAndOthersWork() throws {
        let dir = try Product.tempDir()
        let library = try crashingPlugin("crash_init", ["DIE_IN_INIT"], in: dir)
        let env = ["KANDINSKY_PLUGIN_PATH": dir]
        let warning = "warning: skipping plugin \(library): its init crashed the worker process (was killed by "
            + "SIGSEGV (signal 11))"
        let run = try Product.cli(["run", "text2img", "--quiet", "--prompt", "a cat", "--num-inference-steps", "2",
                                   "--prior-num-inference-steps", "2", "-o", dir + "/out.png"], environment: env)
        XCTAssertEqual(run.status, 0, "run text2img beside a plugin whose init crashes; stderr: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains(warning), "run's warning naming the library; stderr: \(run.stderr)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out.png"), "run's output")
        let list = try Product.cli(["plugins"], environment: env)
        XCTAssertEqual(list.status, 0, "plugins beside a plugin whose init crashes; stderr: \(list.stderr)")
        XCTAssertTrue(list.stderr.contains(warning), "plugins' warning naming the library; stderr: \(list.stderr)")
        XCTAssertTrue(list.stdout.contains("text2img"), "the other plugins listed; stdout: \(list.stdout)")
    }
}
