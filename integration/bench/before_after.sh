#!/usr/bin/env bash
# Compares the request path of two versions side by side: the working tree
# ("after") and a git revision ("before"), each built into its own Caddy,
# alternating before/after every round on the same machine, so the machine's
# drift falls on both. Writes the section "Before and after" at the end of
# RESULTS.md (run.sh keeps it when it rewrites the rest).
#
#   integration/bench/before_after.sh REV     (ROUNDS=5 DURATION=5s)
#
# Per round and version: floor, email_otp with a session, floor (wrk, one
# pinned thread, 32 connections); the ratio is email_otp over the mean of
# its two floor runs. Then BenchmarkServeHTTP of both, alternating.
set -euo pipefail
cd "$(dirname "$0")"
rev=${1:?usage: before_after.sh GIT_REVISION}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
# shellcheck source=signin.sh
. ./signin.sh
out=$PWD/out/before-after
rm -rf "$out" && mkdir -p "$out/storage"
for tool in wrk curl taskset; do
	command -v "$tool" >/dev/null || { echo "before_after: $tool is missing (apt-get install wrk curl util-linux)" >&2; exit 1; }
done

top=$(cd ../.. && pwd)
git -C "$top" worktree add -f "$out/src" "$rev" >/dev/null
trap 'git -C "$top" worktree remove --force "$out/src" >/dev/null 2>&1 || true; kill ${pid:-} 2>/dev/null || true' EXIT
echo "before_after: building both versions" >&2
(cd "$out/src" && go build -o "$out/caddy-before" ./integration/testcaddy && go test -c -o "$out/before.test" ./caddymodule && go test -c -o "$out/before-flow.test" ./flow)
(cd "$top" && go build -o "$out/caddy-after" ./integration/testcaddy && go test -c -o "$out/after.test" ./caddymodule && go test -c -o "$out/after-flow.test" ./flow)

sed -n '/^{/,/^}/p' Caddyfile | sed "s|{\$BENCH_STORAGE}|$out/storage|" >"$out/Caddyfile"
cat >>"$out/Caddyfile" <<'CADDY'
http://localhost:9300 {
	respond "ok"
}
http://localhost:9201 {
	reverse_proxy localhost:9300
}
http://localhost:9202 {
	email_otp {
		allow *
		mailer dev
		limits {
			per_ip 100000 1h
		}
	}
	reverse_proxy localhost:9300
}
CADDY

start() {
	"$out/caddy-$1" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy-$1.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do curl -fsS -o /dev/null http://localhost:9201/ 2>/dev/null && break; sleep 0.1; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
load_core=$(($(nproc) - 1))
rps() { taskset -c "$load_core" wrk -t1 -c32 -d"$DURATION" -H "$2" "$1" | awk '/^Requests\/sec/ { print $2 }'; }

# Each version signs in once, so each request carries the session cookie
# that version issues (their sealed forms may differ in size); the keys live
# in the shared storage.
declare -A cookies
for v in before after; do
	start "$v"
	session=$(bench_signin http://localhost:9202 "$out/jar")
	stop
	[ -n "$session" ] || { echo "before_after: could not sign in ($v)" >&2; exit 1; }
	cookies[$v]="Cookie: email_otp_session=$session"
	echo "before_after: $v's session cookie value: ${#session} characters" >&2
done
: >"$out/rounds"
for round in $(seq 1 "$ROUNDS"); do
	for v in before after; do
		cookie=${cookies[$v]}
		start "$v"
		[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" http://localhost:9202/)" = 200 ] || { echo "before_after: the session does not open ($v)" >&2; exit 1; }
		rps http://localhost:9202/ "$cookie" >/dev/null # warm-up
		f1=$(rps http://localhost:9201/ "X-Bench: 1")
		e=$(rps http://localhost:9202/ "$cookie")
		f2=$(rps http://localhost:9201/ "X-Bench: 1")
		stop
		echo "$round $v $f1 $e $f2" | awk '{ printf "%s %s %s %s %s %.3f\n", $1, $2, $3, $4, $5, 2 * $4 / ($3 + $5) }' | tee -a "$out/rounds" >&2
	done
done
: >"$out/gobench"
for _ in 1 2 3 4 5 6; do
	for v in before after; do
		"$out/$v.test" -test.run '^$' -test.bench BenchmarkServeHTTP -test.benchtime 700ms -test.benchmem | awk -v v="$v" '/^Benchmark/ { print v, $1, $3, $7 }' >>"$out/gobench"
		"$out/$v-flow.test" -test.run '^$' -test.bench 'BenchmarkSessionCheck/memory' -test.benchtime 500ms -test.benchmem | awk -v v="$v" '/^Benchmark/ { print v, $1, $3, $7 }' >>"$out/gobench"
	done
done

summary() { # version column → "median (lowest–highest)"
	awk -v v="$1" -v c="$2" '$1 == v || $2 == v { print $c }' "$3" | sort -g | awk '{ a[NR] = $1 } END { printf "%s (%s–%s)", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
bench() { # version benchmark (its name after "Benchmark", no -GOMAXPROCS) column
	awk -v v="$1" -v b="Benchmark$2" '{ n = $2; sub(/-[0-9]+$/, "", n) } $1 == v && n == b { print $3 " " $4 }' "$out/gobench" |
		sort -g | awk -v c="$3" '{ a[NR] = $c } END { printf "%s (%s–%s)", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
section=$(
	echo "<!-- before-after -->"
	echo "## Before and after"
	echo
	echo "The working tree against \`$(git -C "$top" rev-parse --short "$rev")\`, each in its own Caddy, alternating"
	echo "every round ($ROUNDS rounds, $DURATION per run; floor, email_otp with a session, floor), then"
	echo "\`BenchmarkServeHTTP\` of both, alternating (6 runs each); $(date -u +%Y-%m-%d). Median (lowest–highest)."
	echo
	echo "| | before | after |"
	echo "|---|---:|---:|"
	echo "| email_otp + session, × floor | $(summary before 6 "$out/rounds") | $(summary after 6 "$out/rounds") |"
	echo "| email_otp + session, requests/s | $(summary before 4 "$out/rounds") | $(summary after 4 "$out/rounds") |"
	echo "| \`ServeHTTP/signed-in\`, ns | $(bench before ServeHTTP/signed-in 1) | $(bench after ServeHTTP/signed-in 1) |"
	echo "| \`ServeHTTP/signed-in\`, allocations | $(bench before ServeHTTP/signed-in 2) | $(bench after ServeHTTP/signed-in 2) |"
	echo "| \`ServeHTTP/no-session\`, ns | $(bench before ServeHTTP/no-session 1) | $(bench after ServeHTTP/no-session 1) |"
	echo "| \`SessionCheck/memory\` (a value seen before), ns | $(bench before SessionCheck/memory 1) | $(bench after SessionCheck/memory 1) |"
	echo "| \`SessionCheck/memory-first-sight\`, ns | $(bench before SessionCheck/memory-first-sight 1) | $(bench after SessionCheck/memory-first-sight 1) |"
	echo "| \`SessionCheck/memory-first-sight\`, allocations | $(bench before SessionCheck/memory-first-sight 2) | $(bench after SessionCheck/memory-first-sight 2) |"
	echo
	echo "Reproduce: \`integration/bench/before_after.sh $rev\`."
)
kept=$(sed '/^<!-- before-after -->/,$d' RESULTS.md)
printf '%s\n\n%s\n' "$kept" "$section" >RESULTS.md
printf '%s\n' "$section"
