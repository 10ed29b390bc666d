# Mirrors a labelled ConfigMap into another namespace and follows it through
# update, unlabel and delete (run by hack/demo.sh with KUBECONFIG set).
set -euo pipefail
k() { kubectl --kubeconfig "${KUBECONFIG}" "$@"; }
go build -o "${DEMO_WORK}/controller" ./examples/controller
for ns in demo-src demo-dst; do
  k create namespace "${ns}" --dry-run=client -o yaml | k apply -f - >/dev/null
done
k -n demo-src delete configmap app --ignore-not-found >/dev/null

"${DEMO_WORK}/controller" --kubeconfig "${KUBECONFIG}" --workers 2 >"${DEMO_WORK}/out" 2>"${DEMO_WORK}/err" &
pid=$!
trap 'kill -TERM "${pid}" 2>/dev/null || true' EXIT
seen=0
# wait_for PATTERN: wait for a new output line matching PATTERN and print it.
wait_for() {
  for _ in $(seq 1 150); do
    if line="$(tail -n "+$((seen + 1))" "${DEMO_WORK}/out" | grep -n -m1 -- "$1")"; then
      seen=$((seen + ${line%%:*}))
      echo "  controller> ${line#*:}"
      return 0
    fi
    sleep 0.1
  done
  echo "demo: no line matching '$1'; stderr:"; cat "${DEMO_WORK}/err"; return 1
}
wait_for "controller: watching"

echo "$ kubectl -n demo-src create configmap app --from-literal=color=blue + label + annotate"
k -n demo-src create configmap app --from-literal=color=blue >/dev/null
k -n demo-src annotate configmap app kubekit.dev/mirror-to=demo-dst >/dev/null
k -n demo-src label configmap app kubekit.dev/mirror=true >/dev/null
wait_for "reconciled demo-src/app: created"
echo "  mirror: $(k -n demo-dst get configmap app -o jsonpath='{.data.color} (mirror-of {.metadata.annotations.kubekit\.dev/mirror-of})')"

echo "$ kubectl -n demo-src patch configmap app: color=green"
k -n demo-src patch configmap app --type merge -p '{"data":{"color":"green"}}' >/dev/null
wait_for "reconciled demo-src/app: configured"
echo "  mirror: $(k -n demo-dst get configmap app -o jsonpath='{.data.color}')"

echo "$ kubectl -n demo-src label configmap app kubekit.dev/mirror-   (unlabel)"
k -n demo-src label configmap app kubekit.dev/mirror- >/dev/null
wait_for "reconciled demo-src/app: deleted"
echo "  mirror: $(k -n demo-dst get configmap app --ignore-not-found -o name | grep . || echo gone)"

echo "$ kubectl -n demo-src label configmap app kubekit.dev/mirror=true; kubectl -n demo-src delete configmap app"
k -n demo-src label configmap app kubekit.dev/mirror=true >/dev/null
wait_for "reconciled demo-src/app: created"
k -n demo-src delete configmap app >/dev/null
wait_for "reconciled demo-src/app: deleted"

kill -TERM "${pid}"
wait "${pid}"
trap - EXIT
echo "controller stopped cleanly"
