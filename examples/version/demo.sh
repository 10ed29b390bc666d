# Prints the server version as JSON (run by hack/demo.sh with KUBECONFIG set).
set -euo pipefail
go run ./examples/version --kubeconfig "${KUBECONFIG}" --timeout 10s
