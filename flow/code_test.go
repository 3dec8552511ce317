package flow

import "testing"

func TestNewCodeIsUniformDigits(t *testing.T) {
	const n, samples = 8, 20000
	var counts [10]int
	for i := 0; i < samples; i++ {
		c, err := newCode(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != n {
			t.Fatalf("code %q has %d digits", c, len(c))
		}
		for j := 0; j < n; j++ {
			if c[j] < '0' || c[j] > '9' {
				t.Fatalf("code %q has a non-digit", c)
			}
			counts[c[j]-'0']++
		}
	}
	// Each digit is expected 16000 times (sd ≈ 120): 15000..17000 is > 8 sd.
	for d, got := range counts {
		if got < 15000 || got > 17000 {
			t.Errorf("digit %d appears %d times in %d digits; not uniform", d, got, n*samples)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	good := map[string]string{"12345678": "12345678", "1234 5678": "12345678", "1234-5678": "12345678", " 12345678 ": "12345678"}
	for in, want := range good {
		if got, ok := normalizeCode(in, 8); !ok || got != want {
			t.Errorf("normalizeCode(%q) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "1234567", "123456789", "1234567a", "１２３４５６７８", "١٢٣٤٥٦٧٨", "12345678\x00"} {
		if got, ok := normalizeCode(in, 8); ok {
			t.Errorf("normalizeCode(%q) = %q, accepted", in, got)
		}
	}
}
