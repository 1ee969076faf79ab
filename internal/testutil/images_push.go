package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// PushLayout copies the image of the OCI layout at layoutDir to the
// registry reference ref ("HOST:PORT/repo:tag", plain HTTP) with skopeo: a
// tool no one here wrote puts the image there, berth then pulls it.
func PushLayout(t testing.TB, layoutDir, ref string) {
	t.Helper()
	PushLayoutAs(t, layoutDir, ref, "", "")
}

// PushLayoutAs is PushLayout with registry credentials (none when user is "").
func PushLayoutAs(t testing.TB, layoutDir, ref, user, password string) {
	t.Helper()
	args := []string{"copy", "--quiet", "--dest-tls-verify=false"}
	if user != "" {
		args = append(args, "--dest-creds", user+":"+password)
	}
	args = append(args, "oci:"+layoutDir+":"+LayoutTag, "docker://"+ref)
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
