package image

import (
	"regexp"
	"testing"
)

// The hand-written matchers agree with the regexps they replace.
func TestIDMatchers(t *testing.T) {
	fullID := regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)
	idPart := regexp.MustCompile(`^(sha256:)?[0-9a-f]+$`)
	h64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, s := range []string{
		"", "sha256:", "sha256", "a", "abc123", "ABC", "sha256:abc", "sha256:sha256:abc",
		h64, "sha256:" + h64, h64 + "0", h64[:63], "sha256:" + h64[:63] + "g",
		"busybox", "busybox:latest", "deadbeef", "sha512:" + h64, " abc", "abc\n",
	} {
		if got, want := isFullID(s), fullID.MatchString(s); got != want {
			t.Errorf("isFullID(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := isIDPart(s), idPart.MatchString(s); got != want {
			t.Errorf("isIDPart(%q) = %v, regexp says %v", s, got, want)
		}
	}
}
