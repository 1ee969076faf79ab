package network

import (
	"slices"
	"strings"
	"testing"
)

// A nat and a filter table as iptables-save prints them on a host with a
// live berth network (br-live, container aaaa… publishing a port), a dead
// one (br-dead, container bbbb…), a CNI attachment of berth's whose
// namespace is gone (cccc…), podman's CNI rules (dddd…) and docker's.
const (
	idLive = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idDead = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	idCNI  = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	idPod  = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
)

var natSave = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:BERTH-DN-aaaaaaaaaaaa - [0:0]
:BERTH-DN-bbbbbbbbbbbb - [0:0]
:BERTH-DN-eeeeeeeeeeee - [0:0]
:BERTH-HOSTPORTS - [0:0]
:BERTH-POSTROUTING - [0:0]
:CNI-DN-0123 - [0:0]
:CNI-DN-4567 - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-HOSTPORT-MASQ - [0:0]
:CNI-abcd - [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-HOSTPORTS
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -j BERTH-POSTROUTING
-A POSTROUTING -s 10.89.39.2/32 -m comment --comment "name: \"bridge\" id: \"` + idCNI + `\"" -j CNI-abcd
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A BERTH-DN-aaaaaaaaaaaa -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.89.1.2:80
-A BERTH-DN-bbbbbbbbbbbb -p tcp -m tcp --dport 5000 -j DNAT --to-destination 10.89.2.2:80
-A BERTH-HOSTPORTS -m comment --comment "berth:` + idLive + `" -j BERTH-DN-aaaaaaaaaaaa
-A BERTH-HOSTPORTS -m comment --comment "berth:` + idDead + `" -j BERTH-DN-bbbbbbbbbbbb
-A BERTH-POSTROUTING -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A BERTH-POSTROUTING -s 10.89.1.0/24 ! -o br-live -j MASQUERADE
-A BERTH-POSTROUTING -s 10.89.2.0/24 ! -o br-dead -j MASQUERADE
-A CNI-DN-0123 -p tcp -m tcp --dport 5001 -j DNAT --to-destination 10.89.39.2:80
-A CNI-DN-4567 -p tcp -m tcp --dport 5002 -j DNAT --to-destination 10.88.0.9:80
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"bridge\" id: \"` + idCNI + `\"" -m multiport --dports 5001 -j CNI-DN-0123
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"podman\" id: \"` + idPod + `\"" -m multiport --dports 5002 -j CNI-DN-4567
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A CNI-abcd -d 10.89.39.0/24 -m comment --comment "name: \"bridge\" id: \"` + idCNI + `\"" -j ACCEPT
COMMIT
`

var filterSave = `*filter
:FORWARD ACCEPT [0:0]
:BERTH-FORWARD - [0:0]
:BERTH-ISOLATION-1 - [0:0]
:BERTH-ISOLATION-2 - [0:0]
:CNI-FORWARD - [0:0]
-A FORWARD -j BERTH-FORWARD
-A FORWARD -j BERTH-ISOLATION-1
-A BERTH-FORWARD -i br-live -o br-live -j ACCEPT
-A BERTH-FORWARD -i br-dead -o br-dead -j ACCEPT
-A BERTH-FORWARD -j BERTH-ISOLATION-1
-A BERTH-FORWARD -o br-dead -j ACCEPT
-A BERTH-ISOLATION-1 -i br-dead ! -o br-dead -j BERTH-ISOLATION-2
-A BERTH-ISOLATION-1 -i br-live ! -o br-live -j BERTH-ISOLATION-2
-A BERTH-ISOLATION-2 -o br-dead -j DROP
-A CNI-FORWARD -d 10.89.39.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CNI-FORWARD -s 10.89.39.2/32 -j ACCEPT
-A CNI-FORWARD -s 10.88.0.9/32 -j ACCEPT
COMMIT
`

func TestPlanSweep(t *testing.T) {
	exists := func(name string) bool { return name == "br-live" || name == "docker0" }
	liveVeth := func(id string) bool { return id == idLive }
	cni := map[string][]cniMark{idCNI: {{NetNS: "/gone", IPs: []string{"10.89.39.2"}}}}
	tests := []struct {
		name, table, save string
		rules, chains     []string // substrings of the rules, chain names
	}{
		{
			name: "nat", table: "nat", save: natSave,
			rules: []string{
				`-A POSTROUTING -s 10.89.39.2/32`,
				`-A BERTH-HOSTPORTS -m comment --comment "berth:` + idDead,
				`-A BERTH-POSTROUTING -s 10.89.2.0/24 ! -o br-dead`,
				`-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"bridge\"`,
			},
			chains: []string{"BERTH-DN-bbbbbbbbbbbb", "BERTH-DN-eeeeeeeeeeee", "CNI-DN-0123", "CNI-abcd"},
		},
		{
			name: "filter", table: "filter", save: filterSave,
			rules: []string{
				`-A BERTH-FORWARD -i br-dead -o br-dead -j ACCEPT`,
				`-A BERTH-FORWARD -o br-dead -j ACCEPT`,
				`-A BERTH-ISOLATION-1 -i br-dead ! -o br-dead`,
				`-A BERTH-ISOLATION-2 -o br-dead -j DROP`,
				`-A CNI-FORWARD -d 10.89.39.2/32`,
				`-A CNI-FORWARD -s 10.89.39.2/32 -j ACCEPT`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planSweep(tc.table, []byte(tc.save), exists, liveVeth, cni)
			if len(p.rules) != len(tc.rules) {
				t.Errorf("%d rules planned, want %d:\n%s", len(p.rules), len(tc.rules), strings.Join(p.rules, "\n"))
			}
			for _, want := range tc.rules {
				if !slices.ContainsFunc(p.rules, func(r string) bool { return strings.HasPrefix(r, want) }) {
					t.Errorf("no planned rule starts with %q", want)
				}
			}
			slices.Sort(p.chains)
			if !slices.Equal(p.chains, tc.chains) {
				t.Errorf("chains %v, want %v", p.chains, tc.chains)
			}
			for _, r := range p.rules {
				for _, keep := range []string{"br-live", idLive, idPod, "docker0", "DOCKER", "10.88.0.9", "0x2000"} {
					if strings.Contains(r, keep) {
						t.Errorf("planned to delete a live or foreign rule: %s", r)
					}
				}
			}
		})
	}
}

// BenchmarkStaleRulesSuspected is what every process's first store open
// pays: a marker per bridge berth set up (here lo, which exists) and, in
// the second case, 20 CNI attachments with live namespaces (here the
// process's own). The native driver, berth's default, makes no CNI
// markers.
func BenchmarkStaleRulesSuspected(b *testing.B) {
	for _, bc := range []struct {
		name string
		cni  int
	}{{"bridges", 0}, {"cni20", 20}} {
		b.Run(bc.name, func(b *testing.B) {
			old := RulesMarkerDir
			RulesMarkerDir = b.TempDir()
			defer func() { RulesMarkerDir = old }()
			markBridge("lo")
			for i := range bc.cni {
				if err := markCNI(strings.Repeat("a", 63)+string(rune('a'+i)), "eth0", cniMark{NetNS: "/proc/self/ns/net"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				if StaleRulesSuspected() {
					b.Fatal("live markers look stale")
				}
			}
		})
	}
}
