#!/usr/bin/env bash
# demo.sh starts the test control plane, runs every example program against
# it (each examples/<name>/demo.sh, in name order) and stops it again, even on
# failure. "make demo" runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

work="$(mktemp -d)"
kc="${work}/kubeconfig"
log="${work}/devcluster.log"
go build -o "${work}/devcluster" ./testenv/cmd/devcluster
"${work}/devcluster" --kubeconfig "${kc}" >"${log}" 2>&1 &
cluster=$!
cleanup() {
  kill -TERM "${cluster}" 2>/dev/null || true
  wait "${cluster}" 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

for _ in $(seq 1 900); do
  [[ -f "${kc}" ]] && break
  if ! kill -0 "${cluster}" 2>/dev/null; then
    echo "demo: the control plane did not start:"; cat "${log}"; exit 1
  fi
  sleep 0.2
done
[[ -f "${kc}" ]] || { echo "demo: control plane not ready after 180s"; cat "${log}"; exit 1; }
export KUBECONFIG="${kc}"
echo "demo: $(grep -m1 "ready at" "${log}" | sed 's/^devcluster: //')"

# Each example's demo.sh runs with KUBECONFIG set, the repository root as its
# working directory and DEMO_WORK as a scratch directory.
ran=()
for script in examples/*/demo.sh; do
  name="$(basename "$(dirname "${script}")")"
  echo
  echo "=== examples/${name} ==="
  DEMO_WORK="$(mktemp -d -p "${work}")" bash "${script}"
  ran+=("${name}")
done

echo
echo "demo: ${#ran[@]} examples ran against a real kube-apiserver: ${ran[*]}"
