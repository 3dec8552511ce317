# Sourced by the benchmark scripts: signs a guest in through the pages of
# the email_otp site at $1 (e.g. http://localhost:9202), reading the code
# from the dev outbox, with cookie jar $2; prints the session cookie's value.
bench_signin() {
	local origin=$1 jar=$2 page csrf code
	rm -f "$jar"
	page=$(curl -fsS -c "$jar" -b "$jar" "$origin/.email-otp/signin?rd=/")
	csrf=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
	curl -fsS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode "email=bench@example.com" "$origin/.email-otp/send"
	# Delivery starts just after the answer: wait for the code in the outbox.
	for _ in $(seq 1 50); do
		code=$(curl -fsS "$origin/.email-otp/outbox" | grep -oE '^    [0-9]{8}$' | head -1 | tr -d ' ')
		[ -n "$code" ] && break
		sleep 0.1
	done
	page=$(curl -fsS -c "$jar" -b "$jar" "$origin/.email-otp/verify")
	csrf=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
	curl -fsS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode "code=$code" "$origin/.email-otp/verify"
	awk '$6 == "email_otp_session" { print $7 }' "$jar"
}
