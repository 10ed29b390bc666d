# Applies a directory (a Namespace, a CRD with a custom resource listed before
# it, a ConfigMap and a Deployment), applies it again (unchanged), changes one
# object (configured), shows a server-side dry run and an error, then deletes
# everything (run by hack/demo.sh with KUBECONFIG set).
set -euo pipefail
dir=examples/kubectl/testdata/demo
go build -o "${DEMO_WORK}/kubectl" ./examples/kubectl
k() { echo "+ kubectl $*"; "${DEMO_WORK}/kubectl" --kubeconfig "${KUBECONFIG}" "$@"; }
k apply -f "${dir}"
k apply -f "${dir}"
sed 's/greeting: hello/greeting: bonjour/' "${dir}/30-app.yaml" > "${DEMO_WORK}/app.yaml"
k apply -f "${DEMO_WORK}/app.yaml"
k apply -f "${dir}/30-app.yaml" --dry-run=server
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: demo, namespace: kubectl-demo}\nspec: {type: ClusterIP1, ports: [{port: 80}]}\n' \
  | k apply -f - && exit 1 || echo "(exit status $? as expected)"
# --wait=false: the demo control plane has no controller-manager, so the
# Namespace stays Terminating and delete would wait for it.
k delete -f "${dir}" --wait=false
