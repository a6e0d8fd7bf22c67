#!/usr/bin/env bash
# libFuzzer (with AddressSanitizer) on the parsers of outside input: safetensors files and shard indexes, PNG and
# JPEG decoding, the CLIP tokenizer, the workflow decoder (harnesses in Tests/Fuzz, seed corpora in
# Tests/Fuzz/corpus). Each fuzzer runs SECONDS (default 15); new inputs go to a scratch folder, so the committed
# corpus changes only by hand. Exits non-zero on the first crash, leak or timeout, leaving the input in
# .build-fuzz/crashes/. A long run: tools/fuzz.sh 3600. (lld links them: gold stops with an internal error on
# these links.)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
fuzzers=(Safetensors ImageFiles Tokenizer WorkflowFile)
export KANDINSKY_FUZZ=1
for name in "${fuzzers[@]}"; do
    swift build -c release --build-path .build-fuzz --product "Fuzz$name" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld \
        >/dev/null
done
mkdir -p .build-fuzz/crashes
for name in "${fuzzers[@]}"; do
    scratch=$(mktemp -d)
    echo "fuzzing $name for ${seconds} s"
    log=.build-fuzz/$name.log
    status=0
    ".build-fuzz/release/Fuzz$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -artifact_prefix=.build-fuzz/crashes/"$name"- "$scratch" "Tests/Fuzz/corpus/$name" >"$log" 2>&1 || status=$?
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)" "$log" || true
    rm -rf "$scratch"
    if [ "$status" -ne 0 ]; then
        tail -40 "$log"
        echo "fuzzer $name failed (status $status); the input is in .build-fuzz/crashes/"
        exit 1
    fi
done
