#!/bin/sh
# Issue 11's matrix of write blocks and repoints, one bench/cutover.py per combination, one after the other
# (never two at once: each starts a sandbox of its own and the figures are only worth something on an idle
# machine). Each combination's JSON goes to OUT/<combination>.json, its progress lines to OUT/<combination>.log.
#
#   sh bench/matrix.sh OUT [extra bench/cutover.py flags]
#   RUNS=5 TPS=500 ROWS=10000 sh bench/matrix.sh /tmp/matrix        (the defaults: the issue's matrix)
#   RUNS=1 TPS=200 ROWS=2000 sh bench/matrix.sh /tmp/smoke           (a smoke run: proves each combination works)
#   ONLY=route53 sh bench/matrix.sh /tmp/m                           (the combinations whose name holds ONLY)
#
# The combinations: every write block with the haproxy repoint (read_only on a self-managed source, which it
# needs; parameter_group with the sandbox's RDS applier delay at 0 s and at 1 s), and every other repoint with
# revoke_and_kill. Exit status: 0 when every combination's bench exited 0 (whether its goal was met is in its
# JSON: goal_met), 1 otherwise.
set -u

OUT=${1:?usage: sh bench/matrix.sh OUT [extra bench/cutover.py flags]}
shift
RUNS=${RUNS:-5}
TPS=${TPS:-500}
ROWS=${ROWS:-10000}
ONLY=${ONLY:-}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}

mkdir -p "$OUT"
failed=0
while read -r name flags; do
    case "$name" in ''|'#'*) continue ;; esac
    case "$name" in *"$ONLY"*) ;; *) continue ;; esac
    echo "matrix: $name ($flags) --runs $RUNS --tps $TPS --rows $ROWS" >&2
    # shellcheck disable=SC2086  # $flags is a list of words on purpose
    if "$PYTHON" "$HERE/cutover.py" $flags --runs "$RUNS" --tps "$TPS" --rows "$ROWS" "$@" \
            </dev/null >"$OUT/$name.json" 2>"$OUT/$name.log"; then
        "$PYTHON" - "$OUT/$name.json" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
print("matrix:   " + json.dumps({"combination": r["combination"], "goal_met": r["goal_met"],
      **{w: {"ok_runs": r[w]["ok_runs"], "max_write_gap_ms": r[w]["max_write_gap_ms"],
             "probe_lost": r[w]["probe_lost"], "load_lost": r[w]["load_lost"]} for w in ("cutover", "rollback")}}))
EOF
    else
        echo "matrix:   $name FAILED (exit $?): see $OUT/$name.log" >&2
        failed=1
    fi
done <<'MATRIX'
revoke_and_kill-haproxy         --write-block revoke_and_kill --repoint haproxy
read_only-haproxy               --write-block read_only --repoint haproxy --source self-managed
parameter_group-haproxy-delay0  --write-block parameter_group --repoint haproxy --applier-delay 0
parameter_group-haproxy-delay1  --write-block parameter_group --repoint haproxy --applier-delay 1
revoke_and_kill-command         --write-block revoke_and_kill --repoint command
revoke_and_kill-ssh_file        --write-block revoke_and_kill --repoint ssh_file
revoke_and_kill-route53         --write-block revoke_and_kill --repoint route53
MATRIX
exit $failed
