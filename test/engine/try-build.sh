#!/usr/bin/env bash
# Issue 7 (a real Dagger engine in CI) is blocked: the Go module proxy this
# machine reaches does not serve every module the engine needs. This script
# retries the first step — fetch the dagger module at the SDK's version and every
# module its go.mod requires — and lists what is refused, so a later session can
# see at once whether the block is gone. Not part of CI. Usage: bash test/engine/try-build.sh [version]
set -uo pipefail
cd "$(dirname "$0")/../.."
VERSION=${1:-v$(node -p 'require("./node_modules/@dagger.io/dagger/package.json").version')}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "github.com/dagger/dagger@$VERSION:"
if ! dir=$(go mod download -json "github.com/dagger/dagger@$VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p') || [ -z "$dir" ]; then
  go mod download "github.com/dagger/dagger@$VERSION" 2>&1 | sed 's/^/  /'
  exit 1
fi
cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
cd "$work/src"
# The nested modules (sdk/go, engine/distconsts) are not in the module zip: they are separate modules.
refused=0
for m in $(go mod edit -json | python3 -c '
import json, sys
d = json.load(sys.stdin)
rep = {r["Old"]["Path"]: r["New"] for r in d.get("Replace", [])}
for r in d["Require"]:
    p, v = r["Path"], r["Version"]
    n = rep.get(p)
    if n and "Version" not in n:   # a local replace: the nested module at the required version
        print(f"{p}@{v}")
        continue
    if n: p, v = n["Path"], n["Version"]
    print(f"{p}@{v}")'); do
  if ! out=$(go mod download -json "$m" 2>&1) || grep -q '"Error"' <<<"$out"; then
    echo "  refused: $m — $(grep -o '[0-9][0-9][0-9] [A-Za-z ]*' <<<"$out" | head -1)"
    refused=$((refused + 1))
  fi
done
echo "$refused module(s) refused"
[ "$refused" -eq 0 ]
