package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/plain":         "/plain",
		`/a\040b`:        "/a b",
		`/tab\011x\134y`: "/tab\tx\\y",
		`/end\040`:       "/end ",
		`/bad\09x`:       `/bad\09x`, // not octal: kept
		`/short\04`:      `/short\04`,
		`/nl\012`:        "/nl\n",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
