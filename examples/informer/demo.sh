# Watches Pods in one namespace while kubectl creates, updates and deletes
# some (run by hack/demo.sh with KUBECONFIG set and DEMO_WORK a scratch dir).
set -euo pipefail
kc=(kubectl --kubeconfig "${KUBECONFIG}")
ns=demo-informer
go build -o "${DEMO_WORK}/informer" ./examples/informer
"${kc[@]}" create namespace "${ns}" >/dev/null
# no controller-manager: create the default ServiceAccount Pods need
"${kc[@]}" -n "${ns}" create serviceaccount default >/dev/null
pod() { # name app
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: ${ns}, labels: {app: $2}}
spec: {containers: [{name: c, image: registry.k8s.io/pause:3.10}]}
YAML
}
pod web-0 web | "${kc[@]}" apply -f - >/dev/null

echo "$ informer -n ${ns} --index label:app=web   (in the background)"
"${DEMO_WORK}/informer" --kubeconfig "${KUBECONFIG}" -n "${ns}" --index label:app=web >"${DEMO_WORK}/out" 2>&1 &
informer=$!
stop() { kill -INT "${informer}" 2>/dev/null || true; wait "${informer}" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 100); do grep -q '^synced' "${DEMO_WORK}/out" && break; sleep 0.1; done

pod web-1 web | "${kc[@]}" apply -f - >/dev/null && echo "kubectl: created web-1"
"${kc[@]}" -n "${ns}" label pod web-1 tier=front >/dev/null && echo "kubectl: labelled web-1"
"${kc[@]}" -n "${ns}" delete pod web-1 --wait=false >/dev/null && echo "kubectl: deleted web-1"
pod db-0 db | "${kc[@]}" apply -f - >/dev/null && echo "kubectl: created db-0"
for _ in $(seq 1 100); do grep -q "^ADD ${ns}/db-0" "${DEMO_WORK}/out" && break; sleep 0.1; done
stop
trap - EXIT
echo "--- informer output:"
cat "${DEMO_WORK}/out"
