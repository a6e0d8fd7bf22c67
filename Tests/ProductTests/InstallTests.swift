// tools/install.sh as a user runs it: a prefix with bin/, lib/kandinsky/plugins/ and share/kandinsky/, moved after
// installing, runs text-to-image with the checkout hidden (an empty tmpfs over it in a private mount namespace).
import Foundation
import ImageIO
import XCTest

final class InstallTests: XCTestCase {
    func testAnInstalledPrefixRunsWithoutTheCheckout() throws {
        try Product.requirePlugins()
        let root = try Product.tempDir()
        let install = try Product.command(
            "/bin/bash", [Product.repo + "/tools/install.sh", "--prefix", root + "/first", "--from", Product.buildDir])
        XCTAssertEqual(install.status, 0, install.output)
        for path in [
            "bin/kandinsky", "lib/kandinsky/plugins/libkandinsky_plugin_text2img.so",
            "share/kandinsky/models/default/prior/model_index.json", "share/kandinsky/web/index.html",
            "share/bash-completion/completions/kandinsky", "share/zsh/site-functions/_kandinsky",
            "share/fish/vendor_completions.d/kandinsky.fish",
        ] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/first/" + path), "not installed: \(path)")
        }
        let prefix = root + "/moved"
        try FileManager.default.moveItem(atPath: root + "/first", toPath: prefix)

        let output = root + "/red.png"
        // cd / first: a working directory inside the checkout would still reach it under the mount.
        let hideCheckout = "cd / && mount -t tmpfs none \"$1\" && [ -z \"$(ls -A \"$1\")\" ] && shift && exec \"$@\""
        let run = try Product.command(
            "/usr/bin/unshare",
            (getuid() == 0 ? ["--mount"] : ["--map-root-user", "--mount"]) + [
                "/bin/sh", "-c", hideCheckout, "sh", Product.repo, "/usr/bin/env", "-i", "HOME=" + root,
                "PATH=/usr/bin:/bin", prefix + "/bin/kandinsky", "run", "text2img", "--prompt",
                "a red circle on a blue background", "--seed", "1", "--num-inference-steps", "2",
                "--prior-num-inference-steps", "2", "-o", output,
            ])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(
            run.output.contains("loading prior \(prefix)/share/kandinsky/models/default/prior"),
            "the installed default model was not the one loaded: \(run.output)")
        let image = try ImageFiles.read(output)
        XCTAssertEqual([image.width, image.height], [64, 64])
        let version = try Product.command(prefix + "/bin/kandinsky", ["--version"])
        let built = try Product.command(Product.buildDir + "/kandinsky", ["--version"])
        XCTAssertEqual(version.output, built.output, "the installed binary's --version")
    }
}
