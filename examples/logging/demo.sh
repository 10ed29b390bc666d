# One zap logger for the program and for client-go (run by hack/demo.sh with
# KUBECONFIG set, the repository root as cwd and DEMO_WORK as scratch).
set -euo pipefail
go build -o "${DEMO_WORK}/logging" ./examples/logging
prog="${DEMO_WORK}/logging"

echo "--- --help lists only the program's flags (no klog log_dir, vmodule...):"
"${prog}" --help 2>&1 || true

echo
echo "--- -v 0 (console): only V(0) lines; the version goes to stdout"
"${prog}" --kubeconfig "${KUBECONFIG}" 2>&1

echo
echo "--- -v 3: the program's V(1..3) lines and kubekit's client line, no request lines"
"${prog}" --kubeconfig "${KUBECONFIG}" -v 3 2>&1 >/dev/null | grep -v 'Feature gate default state' || true
echo "(client-go's own V(1) 'Feature gate default state' lines left out)"

echo
echo "--- -v 6 --log-format json --log-file: client-go's request lines come out through zap"
"${prog}" --kubeconfig "${KUBECONFIG}" -v 6 --log-format json --log-file "${DEMO_WORK}/app.log" >/dev/null 2>"${DEMO_WORK}/stderr.log"
grep '"msg":"Response"' "${DEMO_WORK}/app.log"
cmp "${DEMO_WORK}/app.log" "${DEMO_WORK}/stderr.log" && echo "(the log file has the same $(wc -l <"${DEMO_WORK}/app.log") lines as stderr)"

echo
echo "--- -v 9: curl commands (an Authorization header would read 'Bearer <masked>'; this kubeconfig uses client certificates)"
"${prog}" --kubeconfig "${KUBECONFIG}" -v 9 --log-format json 2>&1 >/dev/null | grep -o "curl -v -XGET.*/version'" | head -1 || true

echo
echo "--- bad input:"
"${prog}" -v -1 2>&1 | head -1 || true
"${prog}" --log-format xml 2>&1 | head -1 || true
"${prog}" --log-file /nonexistent/dir/app.log 2>&1 | head -1 || true
