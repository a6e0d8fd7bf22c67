// The release build on a CPU older than the engine's x86-64-v3 kernels: a clear error naming what is missing, not
// SIGILL. The old CPU is QEMU's user-mode emulator with a Westmere model (SSE4.2, no AVX); .ci/run installs
// qemu-user. A Haswell model (the first x86-64-v3 CPU) must start normally.
import Foundation
import XCTest

final class CPUFloorTests: XCTestCase {
    static let qemu = "/usr/bin/qemu-x86_64"

    func testCPUWithoutAVX2GetsAnErrorNamingTheMissingFeatures() throws {
        #if arch(x86_64)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.qemu),
                      "\(Self.qemu) missing: install qemu-user (.ci/run does)")
        let dir = try Product.tempDir()
        let old = try Product.cli(["run", "text2img", "--prompt", "a red circle", "-o", dir + "/out.png"],
                                  launcher: [Self.qemu, "-cpu", "Westmere"])
        XCTAssertEqual(old.status, 1, "exit status on a Westmere CPU; stderr: \(old.stderr)")
        XCTAssertTrue(old.stderr.contains("this CPU lacks avx, avx2, fma, f16c"),
                      "stderr on a Westmere CPU: \(old.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out.png"),
                       "an output was written on a refused CPU")
        let haswell = try Product.cli(["--version"], launcher: [Self.qemu, "-cpu", "Haswell"])
        XCTAssertEqual(haswell.status, 0, "exit status on a Haswell CPU; stderr: \(haswell.stderr)")
        XCTAssertFalse(haswell.stderr.contains("lacks"), "a Haswell CPU was refused: \(haswell.stderr)")
        #endif
    }
}
