#!/usr/bin/env bash
# Proves that nothing is lost: runs the full-size fault tests of
# internal/faulttest (build tag fault) against the real worker binary, the
# real nats-server binary and an OTLP receiver that fails on demand: kill -9
# of the worker with 20,000 results in flight, a 30 s receiver outage, kill
# -9 of nats-server, a 10,000-message poison storm, SIGTERM under load, and
# replicas taking over a killed one; on a 3-node nats-server cluster, kill -9
# of the stream's and of the consumer's leader under run and under a fleet
# replay, and a fleet replay process killed. docs/RELIABILITY.md records a run.
#
#   scripts/fault.sh                         # everything (about 10 minutes on 2 cores)
#   scripts/fault.sh -run TestReceiverOutage # any go test flags
#   FUZZTIME=3m scripts/fault.sh             # then fuzz FuzzMessagePath for 3m
#
# The full log goes to $FAULT_LOG, the REPORT lines (what each test
# observed) to $FAULT_REPORT; both default to files under a temp directory.
# FAULTTEST_WORKER_BIN=path tests a prebuilt worker.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d -t spanferry-fault.XXXXXX)
log=${FAULT_LOG:-$dir/fault.log}
report=${FAULT_REPORT:-$dir/report.txt}
: >"$report"

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version)"
echo "log: $log"
start=$(date +%s)
status=0
FAULTTEST_REPORT=$report go test -tags fault -count=1 -v -timeout 60m "$@" ./internal/faulttest >"$log" 2>&1 || status=$?
echo "go test: exit $status after $(($(date +%s) - start))s"
grep -E '^(--- |    --- )(PASS|FAIL|SKIP)|^(ok|FAIL|panic)' "$log" | grep -v -e 'TestPoisonCatalogue/' -e 'FuzzMessagePath/' || true
echo
echo "report: $report"
cat "$report"

if [ "$status" -eq 0 ] && [ -n "${FUZZTIME:-}" ]; then
	echo
	echo "fuzzing FuzzMessagePath for $FUZZTIME"
	go test -run '^$' -fuzz '^FuzzMessagePath$' -fuzztime "$FUZZTIME" -fuzzminimizetime 10s ./internal/faulttest || status=$?
fi
exit "$status"
