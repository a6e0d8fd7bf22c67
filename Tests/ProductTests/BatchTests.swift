// `kandinsky batch` as a user runs it on the default model: shards that together write the same bytes as one
// process, reruns that skip what is done and redo what changed, status, and clear refusals. The Slurm array run is
// tools/slurm-batch-test.sh (run by .ci/run: its daemons need root).
import Foundation
import XCTest

final class BatchTests: XCTestCase {
    static let item =
        #"{"task": "text2img", "parameters": {"prompt": "a red circle on a blue background", "#
        + #""num_inference_steps": 2, "prior_num_inference_steps": 2}}"#

    func manifest(_ lines: [String]) throws -> (folder: String, path: String) {
        let folder = try Product.tempDir()
        let path = folder + "/manifest.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return (folder, path)
    }

    func batch(_ arguments: [String]) throws -> Product.CLIResult {
        try Product.cli(["batch"] + arguments + ["--precision", "fp32", "--quiet"], defaultModels: true)
    }

    func testThreeShardsWriteTheBytesOfOneProcess() throws {
        try Product.requirePlugins()
        let (folder, path) = try manifest(Array(repeating: Self.item, count: 5))
        let single = try batch([path, "--out", folder + "/single", "--base-seed", "10"])
        XCTAssertEqual(single.status, 0, single.stderr)
        for shard in 0..<3 {
            let run = try batch([
                path, "--out", folder + "/split", "--base-seed", "10", "--shard", "\(shard)", "--of", "3",
            ])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        for index in 0..<5 {
            let name = String(format: "item-%06d.png", index)
            let one = FileManager.default.contents(atPath: folder + "/single/" + name)
            XCTAssertNotNil(one, "\(name) missing")
            XCTAssertEqual(one, FileManager.default.contents(atPath: folder + "/split/" + name), "\(name) differs")
        }
        let status = try Product.cli(["batch", "status", folder + "/split"])
        XCTAssertEqual(status.status, 0, status.stdout + status.stderr)
        XCTAssertTrue(status.stdout.contains("5 items: 5 done, 0 failed, 0 missing"), status.stdout)
        // Shards from the environment, as a Slurm array task sees it.
        let slurm = try Product.cli(
            ["batch", path, "--out", folder + "/split", "--base-seed", "10", "--quiet"], defaultModels: true,
            environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0"])
        XCTAssertTrue(slurm.stderr.contains("batch shard 1-of-3: 2 items, 2 already done"), slurm.stderr)
    }

    func testARerunSkipsWhatIsDoneAndRedoesWhatChanged() throws {
        try Product.requirePlugins()
        var lines = Array(repeating: Self.item, count: 3)
        let (folder, path) = try manifest(lines)
        let out = folder + "/out"
        XCTAssertEqual(try batch([path, "--out", out, "--base-seed", "3"]).status, 0)
        let again = try batch([path, "--out", out, "--base-seed", "3"])
        XCTAssertTrue(again.stderr.contains("3 items, 3 already done"), again.stderr)
        XCTAssertFalse(again.stderr.contains("wrote "), "a finished item ran again: \(again.stderr)")
        lines[1] = lines[1].replacingOccurrences(of: "a red circle", with: "a green square")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let changed = try batch([path, "--out", out, "--base-seed", "3"])
        XCTAssertTrue(changed.stderr.contains("3 items, 2 already done"), changed.stderr)
        XCTAssertTrue(changed.stderr.contains("item 1 text2img"), changed.stderr)
        // A damaged output is not taken for done.
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: out + "/item-000002.png"))
        let status = try Product.cli(["batch", "status", out])
        XCTAssertEqual(status.status, 1)
        XCTAssertTrue(status.stdout.contains("2 done, 0 failed, 1 missing"), status.stdout)
        XCTAssertTrue(status.stdout.contains("item 2 item-000002.png"), status.stdout)
    }

    func testAnItemOfSeveralImagesWritesEachAndIsDoneWhenAllAre() throws {
        try Product.requirePlugins()
        let series = Self.item.replacingOccurrences(of: "}}", with: #", "num_images": 2}}"#)
        let (folder, path) = try manifest([series, Self.item])
        let out = folder + "/out"
        let run = try batch([path, "--out", out, "--base-seed", "20"])
        XCTAssertEqual(run.status, 0, run.stderr)
        for name in ["item-000000-0.png", "item-000000-1.png", "item-000001.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + name), "\(name) missing: \(run.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/item-000000.png"), "a single file for item 0")
        let png = try XCTUnwrap(FileManager.default.contents(atPath: out + "/item-000000-1.png"))
        XCTAssertNotNil(png.range(of: Data("kandinsky:seed\u{0}21".utf8)), "image 1 of item 0 does not record seed 21")
        let again = try batch([path, "--out", out, "--base-seed", "20"])
        XCTAssertTrue(again.stderr.contains("2 items, 2 already done"), again.stderr)
        // One image of the two gone: the item is missing and runs again.
        try FileManager.default.removeItem(atPath: out + "/item-000000-1.png")
        let status = try Product.cli(["batch", "status", out])
        XCTAssertTrue(status.stdout.contains("1 done, 0 failed, 1 missing"), status.stdout)
        let redo = try batch([path, "--out", out, "--base-seed", "20"])
        XCTAssertTrue(redo.stderr.contains("2 items, 1 already done"), redo.stderr)
        XCTAssertEqual(try XCTUnwrap(FileManager.default.contents(atPath: out + "/item-000000-1.png")), png)
    }

    func testProblemsAreRefusedWithTheirPlace() throws {
        let cases: [([String], [String], String)] = [
            ([Self.item], [], "item 0 (line order, from 0) has no seed: give each item one, or --base-seed N"),
            ([#"{"task": "text2img", "parameters": {"seed": -1}}"#], [], "seed '-1' must be a whole number >= 0"),
            ([#"{"task": "text2img", "output": "../x.png"}"#], ["--base-seed", "1"], "must be a plain path inside"),
            (
                [Self.item, #"{"task": "text2img", "colour": 1}"#], ["--base-seed", "1"], "line 2: unknown key 'colour'"
            ),
            ([Self.item], ["--base-seed", "1", "--shard", "3", "--of", "3"], "shard 3 is not in 0..<3"),
        ]
        for (lines, extra, message) in cases {
            let (folder, path) = try manifest(lines)
            let run = try batch([path, "--out", folder + "/out"] + extra)
            XCTAssertNotEqual(run.status, 0, "\(lines) \(extra) was accepted")
            XCTAssertTrue(run.stderr.contains(message), "\(lines) \(extra): \(run.stderr)")
        }
    }

    func testSlurmScriptRunsTheShardsOfAnArray() throws {
        let (folder, path) = try manifest(Array(repeating: Self.item, count: 4))
        let script = try Product.cli(
            ["batch", "slurm-script", path, "--out", folder + "/out", "--tasks", "2", "--base-seed", "5"])
        XCTAssertEqual(script.status, 0, script.stderr)
        XCTAssertTrue(script.stdout.hasPrefix("#!/bin/bash\n"), script.stdout)
        for line in ["#SBATCH --array=0-1", "#SBATCH --requeue", " batch run \(path) --out \(folder)/out --of 2"] {
            XCTAssertTrue(script.stdout.contains(line), "no '\(line)' in:\n\(script.stdout)")
        }
    }
}
