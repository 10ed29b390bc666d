#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module (func FuzzX in a _test.go
# file) for FUZZTIME each (default 30s), one after the other, and stops at the
# first failure (the failing input is then under the package's
# testdata/fuzz). "make fuzz" runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime="${FUZZTIME:-30s}"

targets=()
while IFS= read -r file; do
  dir="./$(dirname "${file}")"
  while IFS= read -r name; do
    targets+=("${dir} ${name}")
  done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "${file}")
done < <(git ls-files --cached --others --exclude-standard -- '*_test.go' | grep -v '^hack/testbin/' | sort)

if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  read -r dir name <<<"${t}"
  echo "== ${name} (${dir}, ${fuzztime})"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="${fuzztime}" "${dir}"
done
echo "fuzz.sh: ${#targets[@]} fuzz targets, ${fuzztime} each: no failure"
