//go:build linux

package api_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestDockerCLIMACNoCollision: through berthd with the docker CLI, a
// container whose generated MAC (02:42 and its IPv4 address) another
// container on the network already has as its --mac-address gets another
// one, and the two reach each other; a second container with the same
// --mac-address runs, as with dockerd (which does not check user-supplied
// MACs: moby#22174; seen with dockerd 20.10, API 1.41).
func TestDockerCLIMACNoCollision(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	must("network", "create", "macnet")
	t.Cleanup(func() {
		docker("", "rm", "-f", "maca", "macb", "macc")
		docker("", "network", "rm", "macnet")
	})
	subnet, err := netip.ParsePrefix(must("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "macnet"))
	if err != nil {
		t.Fatal(err)
	}
	nth := func(k byte) netip.Addr {
		b := subnet.Masked().Addr().As4()
		b[3] += k
		return netip.AddrFrom4(b)
	}
	ipB := nth(30).As4()
	taken := fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", ipB[0], ipB[1], ipB[2], ipB[3])
	eth0 := func(ctr string) string { return must("exec", ctr, "cat", "/sys/class/net/eth0/address") }
	inspectMAC := func(ctr string) string {
		return must("inspect", "-f", `{{(index .NetworkSettings.Networks "macnet").MacAddress}}`, ctr)
	}

	must("run", "-d", "--name", "maca", "--network", "macnet", "--ip", nth(20).String(), "--mac-address", taken, "busybox", "sleep", "1000")
	if got := eth0("maca"); got != taken {
		t.Fatalf("maca's eth0 %s, want %s", got, taken)
	}
	must("run", "-d", "--name", "macb", "--network", "macnet", "--ip", nth(30).String(), "busybox", "sleep", "1000")
	if got := eth0("macb"); got == taken || got != inspectMAC("macb") {
		t.Errorf("macb's eth0 %s (inspect %s): want its own MAC, not %s", got, inspectMAC("macb"), taken)
	}
	if out, errOut, code := docker("", "exec", "macb", "ping", "-c", "1", "-W", "2", nth(20).String()); code != 0 {
		t.Errorf("macb pings maca: exit %d: %s%s", code, out, errOut)
	}
	must("run", "-d", "--name", "macc", "--network", "macnet", "--mac-address", taken, "busybox", "sleep", "1000")
	if got := eth0("macc"); got != taken || !strings.EqualFold(inspectMAC("macc"), taken) {
		t.Errorf("macc's eth0 %s (inspect %s), want %s", got, inspectMAC("macc"), taken)
	}
}
