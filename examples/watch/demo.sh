# Watches ConfigMaps with a checkpoint file, is interrupted, misses a change
# and resumes exactly there (run by hack/demo.sh with KUBECONFIG set and
# DEMO_WORK a scratch dir).
set -euo pipefail
kc=(kubectl --kubeconfig "${KUBECONFIG}")
ns=demo-watch
cp="${DEMO_WORK}/watch.checkpoint"
go build -o "${DEMO_WORK}/watch" ./examples/watch
"${kc[@]}" create namespace "${ns}" >/dev/null
"${kc[@]}" -n "${ns}" create configmap settings --from-literal=color=blue >/dev/null

wait_for() { # pattern file
  for _ in $(seq 1 100); do grep -q "$1" "$2" && return 0; sleep 0.1; done
  echo "demo: no line matching '$1' in $2"; return 1
}
start() { # output file
  "${DEMO_WORK}/watch" --kubeconfig "${KUBECONFIG}" -n "${ns}" --checkpoint "${cp}" >"$1" 2>&1 &
  watcher=$!
}
stop() { kill -INT "${watcher}" 2>/dev/null || true; wait "${watcher}" 2>/dev/null || true; }
trap stop EXIT

echo "$ watch -n ${ns} --checkpoint watch.checkpoint   (in the background)"
start "${DEMO_WORK}/out1"
wait_for "ADDED ${ns}/settings" "${DEMO_WORK}/out1"
"${kc[@]}" -n "${ns}" create configmap web --from-literal=replicas=1 >/dev/null && echo "kubectl: created web"
"${kc[@]}" -n "${ns}" patch configmap web -p '{"data":{"replicas":"2"}}' >/dev/null && echo "kubectl: patched web"
"${kc[@]}" -n "${ns}" delete configmap web >/dev/null && echo "kubectl: deleted web"
wait_for "DELETED ${ns}/web" "${DEMO_WORK}/out1"
stop
echo "--- first run (interrupted with SIGINT, checkpoint saved):"
cat "${DEMO_WORK}/out1"

"${kc[@]}" -n "${ns}" patch configmap settings -p '{"data":{"color":"green"}}' >/dev/null
echo "kubectl: patched settings while the watcher was stopped"
start "${DEMO_WORK}/out2"
wait_for "MODIFIED ${ns}/settings" "${DEMO_WORK}/out2"
stop
trap - EXIT
echo "--- second run (resumed from the checkpoint: only the missed change):"
cat "${DEMO_WORK}/out2"
