# The tutorial's three work queues (plain, delaying, rate-limited); no cluster needed.
set -euo pipefail
go run ./examples/workqueue
