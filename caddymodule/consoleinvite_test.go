package emailotp

import (
	"slices"
	"testing"
)

func TestAddressListReadsWhatAdminsPaste(t *testing.T) {
	emails, bad := addressList("Ann@Contoso.com, bob@x.example; \"Carol C\" <carol@y.example>\r\n\n dan@z.example eve@z.example\nnot an address\nann@contoso.com\nfrank@")
	if want := []string{"ann@contoso.com", "bob@x.example", "carol@y.example", "dan@z.example", "eve@z.example"}; !slices.Equal(emails, want) {
		t.Errorf("addresses %q, want %q", emails, want)
	}
	if want := []string{"not an address", "frank@"}; !slices.Equal(bad, want) {
		t.Errorf("mistakes %q, want %q", bad, want)
	}
}
