package emailotp

import (
	"fmt"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkRecordStep: one audit step as a sign-in request makes it (the
// funnel's counter, the guest's recent events, the audit line, here to a
// logger that drops it), for 10 000 addresses.
func BenchmarkRecordStep(b *testing.B) {
	audit := zap.NewNop()
	emails := make([]string, 10_000)
	for i := range emails {
		emails[i] = fmt.Sprintf("guest%05d@contoso.com", i)
	}
	i := 0
	for b.Loop() {
		recordStep(audit, "contoso.example", emails[i%len(emails)], "code_sent", "", zap.String("tenant", "contoso.example"))
		i++
	}
}
