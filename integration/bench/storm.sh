#!/usr/bin/env bash
# The sign-in storm: STORM_GUESTS guests (default 200) sign in at once through
# Caddy processes with the SMTP mailer against a local SMTP sink (send → mail
# → verify → first document), on the memory store, Redis with one node and
# Redis with two nodes (send on one, verify on the other), and once with a
# mail server ten times slower. STORM_RUNS storms each (default 3); the
# median storm by sign-ins per second is reported. Writes the storm section
# of integration/bench/RESULTS.md.
#
#   ./xcaddy.sh bench storm
set -euo pipefail
cd "$(dirname "$0")"
GUESTS=${STORM_GUESTS:-200}
RUNS=${STORM_RUNS:-3}
out=$PWD/out
mkdir -p "$out"
if ! command -v redis-server >/dev/null; then
	echo "storm: installing redis-server" >&2
	apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
echo "storm: $GUESTS guests at once, $RUNS storms per configuration" >&2
(cd ../.. && STORM_GUESTS=$GUESTS go test -run '^$' -bench SignInStorm -benchtime "${RUNS}x" -timeout 30m ./integration) |
	tee "$out/storm.raw" | grep '^BenchmarkSignInStorm' >"$out/storm" || { cat "$out/storm.raw" >&2; exit 1; }

{
	echo "<!-- storm -->"
	echo "## Sign-in storm"
	echo
	echo "$GUESTS guests sign in at once, each through the whole flow: sign-in page, send (answer timed),"
	echo "the code from the mail, verify (answer timed), the first document. Caddy runs as separate"
	echo "processes with the SMTP mailer (16 delivery workers) against a local SMTP sink that takes"
	echo "50 ms per message (500 ms in the last row); the guests run in the benchmark's process on the"
	echo "same two cores. With two nodes a guest sends on one and verifies and opens the document on the"
	echo "other. Median of $RUNS storms by sign-ins per second; $(date -u +%Y-%m-%d)."
	echo
	echo "| configuration | sign-ins/s | send p50 | send p99 | verify p50 | verify p99 | mails delivered | Redis commands per sign-in | peak memory per node |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk '{
		name = $1; sub(/^BenchmarkSignInStorm\//, "", name); sub(/-[0-9]+$/, "", name)
		for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
		printf "| %s | %.0f | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d | %s | %.0f MB |\n", name, m["signins/s"],
			m["send-p50-ms"], m["send-p99-ms"], m["verify-p50-ms"], m["verify-p99-ms"], m["mails"],
			(name ~ /redis/) ? sprintf("%.1f", m["redis-cmds/signin"]) : "–", m["peak-rss-MB/node"]
	}' "$out/storm"
	echo
	echo "The send answer does not wait for the mail server: with a mail server ten times slower (last"
	echo "row, 500 ms a message) it stays far below one message's time; sign-ins per second then follow"
	echo "how fast mail goes out (16 workers at 500 ms: 32 a second). Redis commands are as Redis counts"
	echo "them, the commands inside the store's Lua scripts included; with Redis, the send answer makes"
	echo "about eight round trips in a row (limits, holds, challenge, outbox), which a storm queues up."
	echo "Reproduce: \`./xcaddy.sh bench storm\` (STORM_GUESTS, STORM_RUNS from the environment)."
	echo
} >"$out/storm.md"

# RESULTS.md: what is before the storm section, the new section, then the
# before/after section if there is one.
awk -v section="$out/storm.md" '
	/^<!-- storm -->/ { skipping = 1; next }
	/^<!-- before-after -->/ { if (!done) { while ((getline line < section) > 0) print line; done = 1 }; skipping = 0 }
	!skipping { print }
	END { if (!done) { print ""; while ((getline line < section) > 0) print line } }
' RESULTS.md >RESULTS.new
mv RESULTS.new RESULTS.md
cat "$out/storm.md"
