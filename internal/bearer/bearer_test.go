package bearer

import "testing"

// TestToken: the Authorization scheme is case-insensitive (RFC 9110), the key is not.
func TestToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer k": "k", "bearer k": "k", "BEARER k": "k", "BeArEr   k": "k", " Bearer k ": "k",
		"Basic k": "", "Bearerk": "", "Bearer": "", "": "",
	} {
		got, ok := Token(h)
		if ok != (want != "") || got != want {
			t.Errorf("Token(%q) = %q, %v; want %q", h, got, ok, want)
		}
	}
}
