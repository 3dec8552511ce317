#!/usr/bin/env bash
# Measures what email_otp costs per request against Caddy without auth, with
# basic_auth and with forward_auth, in one Caddy, interleaved A B A B…, with
# wrk. Writes integration/bench/RESULTS.md.
#
#   ./xcaddy.sh bench                  (ROUNDS=7 DURATION=5s CONNECTIONS=32)
#   PROFILE=1 ./xcaddy.sh bench        also CPU profiles of the floor and email_otp
#
# A round runs the floor between every two configurations (F 1 F 2 F … 6 F);
# a configuration's ratio is to the mean of the floor runs just before and
# after it, and the median over rounds is reported. On a shared machine the
# floor itself moves by ±20% from minute to minute; its neighbours move with it.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
out=$PWD/out
mkdir -p "$out"
# shellcheck source=signin.sh
. ./signin.sh

updated=
need() {
	command -v "$1" >/dev/null && return
	echo "bench: installing $2" >&2
	[ -n "$updated" ] || { apt-get update -qq >/dev/null; updated=1; }
	apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
names=("reverse_proxy only (floor)" "email_otp + session (memory store)" "email_otp, no session (401)" "basic_auth" "forward_auth to always-yes" "email_otp + session (Redis store)" "forward_auth to oauth2-proxy v7.8.1" "reference: reverse_proxy + the five identity headers (header_up) and the same Cookie line, no auth" "email_otp + session, with the pending cookie too (as browsers sent it before it was scoped to the gateway's pages)")

# measure_all runs Caddy, Redis and oauth2-proxy and writes out/samples,
# out/ratios and out/params; REPORT_ONLY=1 skips it and reports on the last run.
measure_all() {
	need wrk wrk
	need redis-server redis-server
	need curl curl
	need taskset util-linux

	echo "bench: building Caddy with the module" >&2
	(cd ../.. && go build -o "$out/caddy" ./integration/testcaddy)

	# oauth2-proxy, as many forward_auth users run it: built from the module
	# proxy in a scratch module (its htpasswd sign-in needs no identity provider).
	if [ ! -x "$out/oauth2-proxy" ]; then
		echo "bench: building oauth2-proxy v7.8.1" >&2
		scratch=$(mktemp -d)
		(cd "$scratch" && go mod init o2p >/dev/null 2>&1 &&
			go get -tool github.com/oauth2-proxy/oauth2-proxy/v7@v7.8.1 >/dev/null 2>&1 &&
			go build -o "$out/oauth2-proxy" github.com/oauth2-proxy/oauth2-proxy/v7)
		rm -rf "$scratch"
	fi
	printf 'bench:{SHA}%s\n' "$(printf hiccup | openssl sha1 -binary | base64)" >"$out/htpasswd"
	"$out/oauth2-proxy" --http-address=127.0.0.1:9302 --upstream=static://202 --htpasswd-file="$out/htpasswd" \
		--email-domain='*' --cookie-secret=0123456789abcdef0123456789abcdef --cookie-secure=false \
		--provider=github --client-id=bench --client-secret=bench --skip-provider-button=true >"$out/oauth2-proxy.log" 2>&1 &
	o2p_pid=$!

	export BENCH_STORAGE="$out/storage" BENCH_REDIS_PORT=9398
	redis-server --port "$BENCH_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$out/redis.log" 2>&1 &
	redis_pid=$!
	"$out/caddy" run --config Caddyfile --adapter caddyfile >"$out/caddy.log" 2>&1 &
	caddy_pid=$!
	trap 'kill $caddy_pid $redis_pid $o2p_pid 2>/dev/null || true' EXIT
	for _ in $(seq 1 100); do curl -fsS -o /dev/null http://localhost:9201/ 2>/dev/null && break; sleep 0.1; done

	# A session: sign in through the pages, reading the code from the dev outbox.
	session=$(bench_signin http://localhost:9202 "$out/jar")
	[ -n "$session" ] || { echo "bench: could not sign in" >&2; exit 1; }
	cookie="Cookie: email_otp_session=$session"
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" http://localhost:9202/)" = 200 ] || { echo "bench: the session does not open 9202" >&2; exit 1; }
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" http://localhost:9206/)" = 200 ] || { echo "bench: the session does not open 9206" >&2; exit 1; }

	o2p_jar="$out/o2p.jar"
	rm -f "$o2p_jar"
	curl -fsS -o /dev/null -c "$o2p_jar" -d 'username=bench&password=hiccup' http://127.0.0.1:9302/oauth2/sign_in || true
	o2p_cookie="Cookie: _oauth2_proxy=$(awk '$6 == "_oauth2_proxy" { print $7 }' "$o2p_jar")"
	status=$(curl -s -o /dev/null -w '%{http_code}' -H "$o2p_cookie" http://localhost:9207/)
	[ "$status" = 200 ] || { echo "bench: oauth2-proxy does not let the session through (status $status; see $out/oauth2-proxy.log)" >&2; exit 1; }

	# The pending cookie (sealed, ~200 bytes) now stays on the gateway's
	# pages; before, browsers sent it with every request for a document.
	pending=$(awk '$6 == "email_otp_pending" { print $7 }' "$out/jar")
	[ -n "$pending" ] || { echo "bench: no pending cookie in the jar" >&2; exit 1; }
	old_jar="$cookie; email_otp_pending=$pending"

	urls=(http://localhost:9201/ http://localhost:9202/ http://localhost:9202/ http://localhost:9204/ http://localhost:9205/ http://localhost:9206/ http://localhost:9207/ http://localhost:9208/ http://localhost:9202/)
	headers=("X-Bench: 1" "$cookie" "X-Bench: 1" "Authorization: Basic YmVuY2g6aGljY3Vw" "X-Bench: 1" "$cookie" "$o2p_cookie" "$cookie" "$old_jar")
	: >"$out/samples"
	: >"$out/redis-per-request"
	# wrk runs one thread pinned to the last core: two wrk threads roaming both
	# cores take turns with Caddy unevenly, and the ratios swing with them.
	load_core=$(($(nproc) - 1))
	# Redis's own count of the commands it processed (the Redis store's row).
	redis_commands() { redis-cli -p "$BENCH_REDIS_PORT" info stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }'; }
	measure() { # round index duration
		[ "$2" = 5 ] && commands_before=$(redis_commands)
		taskset -c "$load_core" wrk -t1 -c"$CONNECTIONS" -d"$3" --latency -H "${headers[$2]}" "${urls[$2]}" >"$out/wrk.txt"
		if [ "$2" = 5 ] && [ "$1" != 0 ]; then
			# commands per signed-in request, one line per round
			awk -v c="$(($(redis_commands) - commands_before))" '/requests in/ { printf "%.4f\n", c / $1 }' "$out/wrk.txt" >>"$out/redis-per-request"
		fi
		awk -v r="$1" -v i="$2" '
			function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
			/^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
			/Non-2xx/ { non2xx = $NF }
			END { print r, i, rps, p50, p99, non2xx+0 }' "$out/wrk.txt"
	}
	echo "bench: warming up every configuration" >&2
	for i in "${!urls[@]}"; do measure 0 "$i" 3s >/dev/null; done
	# samples: round, configuration, requests/s, p50 µs, p99 µs, non-2xx responses
	# ratios:  round, configuration, requests/s over its neighbouring floor runs
	: >"$out/ratios"
	for round in $(seq 1 "$ROUNDS"); do
		echo "bench: round $round/$ROUNDS" >&2
		before=$(measure "$round" 0 "$DURATION" | tee -a "$out/samples" | awk '{ print $3 }')
		for i in "${!urls[@]}"; do
			[ "$i" = 0 ] && continue
			rps=$(measure "$round" "$i" "$DURATION" | tee -a "$out/samples" | awk '{ print $3 }')
			after=$(measure "$round" 0 "$DURATION" | tee -a "$out/samples" | awk '{ print $3 }')
			awk -v r="$round" -v i="$i" -v x="$rps" -v a="$before" -v b="$after" 'BEGIN { printf "%s %s %.4f\n", r, i, 2 * x / (a + b) }' >>"$out/ratios"
			before=$after
		done
	done
	printf '%s 0 1\n' $(seq 1 "$ROUNDS") >>"$out/ratios"

	# PROFILE=1: a CPU profile of Caddy under the floor's load and under
	# email_otp's, to read what the gateway adds (go tool pprof -diff_base).
	rm -f "$out/profile-cpu"
	if [ "${PROFILE:-}" = 1 ]; then
		for i in 0 1; do
			curl -fsS -o "$out/profile-$i.pprof" "http://localhost:9299/debug/pprof/profile?seconds=8" &
			profiler=$!
			rps=$(measure profile "$i" 10s | awk '{ print $3 }')
			wait "$profiler"
			cpu=$(cd ../.. && go tool pprof -top "$out/caddy" "$out/profile-$i.pprof" 2>/dev/null | grep -o 'Total samples = [0-9.]*m\?s' | cut -d' ' -f4)
			echo "bench: ${names[$i]}: $rps requests/s; Caddy's CPU in 8 s: $cpu; profile $out/profile-$i.pprof" >&2
			awk -v i="$i" -v n="$rps" -v c="$cpu" 'BEGIN { s = (c ~ /ms$/) ? c / 1000 : c + 0; printf "%s %.0f\n", i, s * 1e6 / (n * 8) }' >>"$out/profile-cpu"
		done
		(cd ../.. && go tool pprof -top -diff_base "$out/profile-0.pprof" "$out/caddy" "$out/profile-1.pprof" 2>/dev/null | head -40) >&2
	fi
	printf 'ROUNDS=%s\nDURATION=%s\nCONNECTIONS=%s\n' "$ROUNDS" "$DURATION" "$CONNECTIONS" >"$out/params"
}
if [ "${REPORT_ONLY:-}" = 1 ]; then
	# shellcheck source=/dev/null
	. "$out/params"
else
	measure_all
fi
load_core=$(($(nproc) - 1))

# A signed-in configuration answering anything but 2xx measures an error page.
bad=$(awk '$2 != 2 && $6 > 0 { print $2 }' "$out/samples" | sort -u)
for k in $bad; do echo "bench: ${names[$k]} answered non-2xx responses: the figures are not valid" >&2; done
[ -z "$bad" ] || exit 1

echo "bench: Go benchmarks" >&2
(
	cd ../..
	go test -run '^$' -bench 'SessionCheck|Send$|VerifyWrongCode' -benchmem -benchtime 20000x ./flow
	go test -run '^$' -bench 'ServeHTTP' -benchmem ./caddymodule
	go test -run '^$' -bench 'PendingChallengeMemory' -benchtime 1x ./flow
	go test -run '^$' -bench 'SessionRevoked' -benchmem -benchtime 20000x ./internal/store/redisstore
	go test -run '^$' -bench 'PasskeySignIn' -benchmem -benchtime 300x ./internal/passkey
	go test -run '^$' -bench 'Find100k' -benchtime 30x ./flow/directory
	go test -run '^$' -bench 'ConsoleList100k' -benchtime 30x ./integration
) 2>&1 | grep -E '^Benchmark' >"$out/gobench"
# a Go benchmark's figure: the number before unit on the line of name
gobench() { awk -v name="$1" -v unit="$2" '$1 ~ "^Benchmark" name "-[0-9]+$" { for (i = 2; i <= NF; i++) if ($i == unit) print $(i - 1) }' "$out/gobench"; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
{
	echo "# Benchmark results"
	echo
	echo "What a request costs after sign-in: email_otp against Caddy's own \`reverse_proxy\`"
	echo "(the floor), \`basic_auth\`, and \`forward_auth\` to an always-yes endpoint and to oauth2-proxy, in one Caddy"
	echo "($(cd ../.. && go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)), each configuration run between two runs of the floor (F 1 F 2 … 6 F), $ROUNDS rounds of $DURATION per run,"
	echo "one wrk thread pinned to core $load_core with $CONNECTIONS connections, on the same machine as Caddy."
	echo
	echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d)."
	echo
	echo "| configuration | requests/s (median) | p50 latency | p99 latency | × floor (median over rounds) | × floor, lowest–highest round |"
	echo "|---|---:|---:|---:|---:|---:|"
	# the median of the numbers on stdin
	median_of() { sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'; }
	# column c of configuration k's samples, median over rounds
	median() { awk -v k="$1" -v c="$2" '$2 == k { print $c }' "$out/samples" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
	# configuration k's requests/s over its neighbouring floor runs, one line per round
	ratios() { awk -v k="$1" '$2 == k { print $3 }' "$out/ratios"; }
	# configuration a over configuration b, each through its own floor runs, median over rounds
	versus() { awk -v a="$1" -v b="$2" '$2 == a { x[$1] = $3 } $2 == b { y[$1] = $3 } END { for (r in x) print x[r] / y[r] }' "$out/ratios" | median_of; }
	for k in "${!names[@]}"; do
		rps=$(median "$k" 3)
		range=$(ratios "$k" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo, hi }')
		echo "| ${names[$k]} | ${rps%.*} | $(median "$k" 4) µs | $(median "$k" 5) µs | $(ratios "$k" | median_of) | $range |"
	done
	echo
	echo "## Targets"
	echo
	echo "| target | measured | verdict |"
	echo "|---|---:|---|"
	target() { # description measured minimum
		echo "| $1 | $2× | $(awk -v m="$2" -v t="$3" 'BEGIN { print (m >= t) ? "met" : "missed" }') |"
	}
	target "email_otp with a session ≥ 0.95 × the floor" "$(ratios 1 | median_of)" 0.95
	target "email_otp with a session ≥ 1.35 × forward_auth to always-yes" "$(versus 1 4)" 1.35
	target "email_otp with a session ≥ 3 × forward_auth to oauth2-proxy" "$(versus 1 6)" 3
	at_most() { # description measured unit maximum
		echo "| $1 | $2 $3 | $(awk -v m="$2" -v t="$4" 'BEGIN { print (m <= t) ? "met" : "missed" }') |"
	}
	at_most "session check ≤ 2 µs (memory store, \`SessionCheck/memory\`)" "$(gobench SessionCheck/memory ns/op | awk '{ printf "%.2f", $1 / 1000 }')" µs 2
	at_most "session check ≤ 5 allocations" "$(gobench SessionCheck/memory allocs/op)" allocs 5
	at_most "… on a node's first sight of the value ≤ 2 µs (\`memory-first-sight\`)" "$(gobench SessionCheck/memory-first-sight ns/op | awk '{ printf "%.2f", $1 / 1000 }')" µs 2
	at_most "… on first sight ≤ 5 allocations" "$(gobench SessionCheck/memory-first-sight allocs/op)" allocs 5
	target "email_otp with a session ≥ the reference (same headers, same Cookie line)" "$(versus 1 7)" 1
	target "Redis store with a session ≥ 0.90 × the floor" "$(ratios 5 | median_of)" 0.90
	target "Redis store with a session ≥ 0.97 × the memory store" "$(versus 5 1)" 0.97
	at_most "Redis store: ≤ 0.05 Redis commands per signed-in request under load (Redis's own count, median over rounds)" "$(median_of <"$out/redis-per-request")" commands 0.05
	at_most "Redis: session check from the node's memory (\`SessionCheck/redis-session-cache\`, $(gobench SessionCheck/redis-session-cache ns/op) ns) ≤ 0.05 commands" "$(gobench SessionCheck/redis-session-cache redis-commands/op)" commands 0.05
	at_most "≤ 512 bytes per pending challenge, after a million sends (bound 100 000)" "$(gobench PendingChallengeMemory bytes/challenge)" bytes 512
	at_most "a passkey sign-in's server work, begin and finish, ≤ 2 ms (\`PasskeySignIn\`: file storage)" "$(gobench PasskeySignIn ns/op | awk '{ printf "%.2f", $1 / 1000000 }')" ms 2
	at_most "a page of 100 000 guests with a search ≤ 200 ms p95 (\`Find100k\`, file storage and Redis, the slower)" "$({ gobench Find100k/file_system/search-one-address p95-ms; gobench Find100k/redis/search-one-address p95-ms; } | sort -n | tail -1)" ms 200
	at_most "the console's and the admin API's page of 100 000 guests with a search, through Caddy, ≤ 200 ms p95 (\`ConsoleList100k\`, Redis, the slower)" "$({ gobench ConsoleList100k/console/search-one-address p95-ms; gobench ConsoleList100k/admin-api/search-one-address p95-ms; } | sort -n | tail -1)" ms 200
	echo
	echo "The pending cookie stays on the gateway's pages now: a signed-in request for a document"
	echo "carries the session cookie alone, and is $(versus 1 8)× (median over rounds) the same request"
	echo "with the pending cookie too, as browsers sent it before ($(ratios 8 | median_of)× the floor)."
	echo
	echo "Also: email_otp with the Redis store is $(versus 5 6)× forward_auth to oauth2-proxy (which"
	echo "checks its cookie on every request); the Redis store answers session checks from the node's"
	echo "memory while subscribed to its change feed (\`session_cache\`, 1 s). The ratios between two"
	echo "configurations are taken through each one's own neighbouring floor runs, median over rounds."
	echo
	echo "## What bounds the main figure"
	echo
	reference=$(ratios 7 | median_of)
	own=$(versus 1 7)
	echo "A signed-in request reaches the backend with five identity headers (\`X-Auth-Email\`,"
	echo "\`-Tenant\`, \`-Method\`, \`-Session-Expires\`, \`-Guest-Status\`). Sending them costs by itself:"
	echo "the reference row, plain \`reverse_proxy\` adding the same five headers with \`header_up\`"
	echo "and no auth at all, runs at ${reference}× the floor (the proxy copies and writes them, the backend"
	echo "parses them). email_otp runs at ${own}× that reference: the rest is the gateway's own work,"
	echo "\`BenchmarkServeHTTP/signed-in\` below (open and check the session, strip client copies of the"
	echo "headers, set headers and placeholders, drop the gateway's cookie)."
	if [ -s "$out/profile-cpu" ]; then
		echo "A CPU profile of Caddy under load (\`PROFILE=1\`) puts Caddy's CPU per request at"
		echo "$(awk '$1 == 0 { print $2 }' "$out/profile-cpu") µs for the floor and $(awk '$1 == 1 { print $2 }' "$out/profile-cpu") µs with email_otp."
	fi
	echo "The floor itself moves by up to ±20% between runs on this shared machine; compare the"
	echo "lowest–highest column before reading a difference of a few percent."
	echo
	echo "## Go benchmarks"
	echo
	echo "The session check is the work of every signed-in request (open the cookie value, check"
	echo "tenant, expiry, sign-out and guest record); \`first-sight\` is a value this node has not"
	echo "opened before (base64 and AES-256-GCM). \`ServeHTTP\` is the"
	echo "gateway's whole cost in front of a backend, as Caddy calls it, without the network."
	echo "Bytes per pending challenge are measured after a million sends into a store bounded at 100 000."
	echo
	echo '```'
	cat "$out/gobench"
	echo '```'
	echo
	echo "Reproduce: \`./xcaddy.sh bench\` (ROUNDS, DURATION, CONNECTIONS from the environment; PROFILE=1 adds CPU profiles)."
} >RESULTS.new
# The sections written elsewhere (the change feed's comparison, storm.sh,
# before_after.sh) are kept as they were: everything from the first of their
# markers on.
sed -n '/^<!-- \(choice\|storm\|before-after\) -->/,$p' RESULTS.md 2>/dev/null | { read -r first && { echo; echo "$first"; cat; } || true; } >>RESULTS.new
mv RESULTS.new RESULTS.md
cat RESULTS.md
