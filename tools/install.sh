#!/usr/bin/env bash
# Installs kandinsky under a prefix:
#   bin/kandinsky                      the CLI (also the worker and the server)
#   lib/kandinsky/plugins/             the plugin libraries
#   share/kandinsky/models/default/    the embedded default model set
#   share/kandinsky/web/               the web editor of `kandinsky serve`
#   share/bash-completion/completions/kandinsky, share/zsh/site-functions/_kandinsky,
#   share/fish/vendor_completions.d/kandinsky.fish
# The installed binary finds its plugins, models and web files from where it lies, so the prefix may be moved.
#
#   tools/install.sh [--prefix DIR] [--from BUILD_DIR]
#
# --prefix: default ~/.local. --from: a finished release build folder (default: `swift build -c release` runs
# first and its folder is used). Each piece is copied beside its place first and then renamed into it, so an
# interrupted install leaves the previous one whole.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="$HOME/.local"
from=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --from) from="$2"; shift 2 ;;
        --from=*) from="${1#*=}"; shift ;;
        -h|--help) sed -n 2,16p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (tools/install.sh --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$from" ]; then
    swift build -c release
    from=$(swift build -c release --show-bin-path)
fi
for needed in "$from/kandinsky" "$from/libkandinsky_plugin_text2img.so" models/default/prior \
    Sources/Server/Web/index.html; do
    [ -e "$needed" ] || { echo "install.sh: $needed is missing (build with swift build -c release)" >&2; exit 1; }
done
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
staging=$(mktemp -d "$prefix/.kandinsky-install.XXXXXX")
trap 'rm -rf "$staging"' EXIT

mkdir -p "$staging/bin" "$staging/plugins" "$staging/completions"
cp "$from/kandinsky" "$staging/bin/kandinsky"
cp "$from"/libkandinsky_plugin_*.so "$staging/plugins/"
cp -R models/default "$staging/models"
cp -R Sources/Server/Web "$staging/web"
"$staging/bin/kandinsky" --generate-completion-script bash > "$staging/completions/bash"
"$staging/bin/kandinsky" --generate-completion-script zsh > "$staging/completions/zsh"
"$staging/bin/kandinsky" --generate-completion-script fish > "$staging/completions/fish"

# place SOURCE TARGET: TARGET replaced by SOURCE in one rename (a folder's old copy is removed after).
place() {
    mkdir -p "$(dirname "$2")"
    if [ -d "$2" ] && [ ! -L "$2" ]; then
        mv "$2" "$staging/old-$(basename "$2")"
    fi
    mv -f "$1" "$2"
}
place "$staging/plugins" "$prefix/lib/kandinsky/plugins"
place "$staging/models" "$prefix/share/kandinsky/models/default"
place "$staging/web" "$prefix/share/kandinsky/web"
place "$staging/completions/bash" "$prefix/share/bash-completion/completions/kandinsky"
place "$staging/completions/zsh" "$prefix/share/zsh/site-functions/_kandinsky"
place "$staging/completions/fish" "$prefix/share/fish/vendor_completions.d/kandinsky.fish"
place "$staging/bin/kandinsky" "$prefix/bin/kandinsky"
echo "installed kandinsky $("$prefix/bin/kandinsky" --version) under $prefix (put $prefix/bin on PATH)"
