# Creates 300 Namespaces with a bounded, rate-limited worker pool, lists them
# in pages of 50, then does the same for a CRD's objects (run by hack/demo.sh
# with KUBECONFIG set and DEMO_WORK a scratch dir).
set -euo pipefail
kc=(kubectl --kubeconfig "${KUBECONFIG}")
go build -o "${DEMO_WORK}/list" ./examples/list
l() { echo "+ list $*"; "${DEMO_WORK}/list" --kubeconfig "${KUBECONFIG}" "$@"; }
l --create 300 --prefix demo-list- --qps 100 --burst 50
l --resource namespaces --page-size 50 -l app.kubernetes.io/created-by=kubekit-list > "${DEMO_WORK}/out"
head -n 3 "${DEMO_WORK}/out"; echo "..."; tail -n 2 "${DEMO_WORK}/out"

"${kc[@]}" apply -f examples/list/testdata/widgets-crd.yaml >/dev/null
"${kc[@]}" wait --for condition=Established crd/widgets.list.kubekit.dev >/dev/null
"${kc[@]}" create namespace demo-list >/dev/null
l --resource widgets.list.kubekit.dev -n demo-list --create 20 --prefix w-
l --resource widgets.list.kubekit.dev -n demo-list --page-size 8
