#!/usr/bin/env bash
# The concurrency tests under ThreadSanitizer: the host, the model server and the engine are instrumented; the Swift
# plugins are plain debug builds, because a TSan-built plugin cannot be dlopen'ed by the test runner (the runner
# does not export the TSan runtime's __tsan_external_write). The plugins hold no shared state; the server does.
# Exits non-zero on the first ThreadSanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --sanitize=thread --build-path .build-tsan --build-tests
for plugin in text2img img2img inpaint fusion controlnet_depth; do
    swift build --product "kandinsky_plugin_$plugin"
    cp ".build/debug/libkandinsky_plugin_$plugin.so" .build-tsan/debug/
done
TSAN_OPTIONS=halt_on_error=1 .build-tsan/debug/kandinskyPackageTests.xctest ProductTests.ConcurrencyTests
