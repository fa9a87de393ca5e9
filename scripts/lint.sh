#!/usr/bin/env bash
# Lint checks: clang-format (every C/C++ file) and clang-tidy (every project
# source in a build's compile_commands.json).
#   scripts/lint.sh format          check formatting
#   scripts/lint.sh tidy BUILD_DIR  run clang-tidy
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  format)
    # Kernel code under kmod-shim/ follows kernel style (checkpatch.pl,
    # CTest kmod_checkpatch; kmod-shim/.clang-format disables formatting
    # there).
    files=$(git ls-files '*.cc' '*.h' 2>/dev/null || true)
    [ -n "$files" ] || files=$(find common server client bench proto -name '*.cc' -o -name '*.h' 2>/dev/null)
    bad=0
    for f in $files; do
      case "$f" in kmod-shim/*) continue ;; esac
      clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "clang-format: $f needs formatting"; bad=1; }
    done
    exit $bad ;;
  tidy)
    build=${2:?build dir}
    srcs=$(python3 - "$build" <<'PY'
import json, os, sys
db = json.load(open(os.path.join(sys.argv[1], "compile_commands.json")))
root = os.getcwd()
seen = set()  # a file compiled twice (the installed library's PIC copy) once
for e in db:
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(f, root)
    if rel.split(os.sep)[0] in ("common", "server", "client", "bench") and f.endswith(".cc") and f not in seen:
        seen.add(f)
        print(f)
PY
)
    echo "$srcs" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet 2>&1 \
      | grep -E "(error|warning):" | grep -v "warnings generated" | sort -u > /tmp/txbuf-tidy.$$ || true
    if [ -s /tmp/txbuf-tidy.$$ ]; then cat /tmp/txbuf-tidy.$$; rm -f /tmp/txbuf-tidy.$$; exit 1; fi
    rm -f /tmp/txbuf-tidy.$$; echo "clang-tidy: clean" ;;
  *) echo "usage: $0 format | tidy BUILD_DIR" >&2; exit 2 ;;
esac
