# Walks a Namespace, a ConfigMap and a Deployment through list, get, create,
# update, JSON/merge/strategic patch, server-side apply and delete (run by
# hack/demo.sh with KUBECONFIG set).
set -euo pipefail
go run ./examples/crud --kubeconfig "${KUBECONFIG}" --namespace crud-demo
