package network

import (
	"reflect"
	"testing"
)

func TestSplitRule(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"plain", `-A POSTROUTING -s 10.88.0.2/32 -j CNI-abc`, []string{"-A", "POSTROUTING", "-s", "10.88.0.2/32", "-j", "CNI-abc"}},
		{"comment", `-A X -m comment --comment "name: bridge id: 42" -j ACCEPT`, []string{"-A", "X", "-m", "comment", "--comment", "name: bridge id: 42", "-j", "ACCEPT"}},
		{"escaped quotes", `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"bridge\" id: \"42\"" -m multiport --dports 3927 -j CNI-DN-f8`,
			[]string{"-A", "CNI-HOSTPORT-DNAT", "-p", "tcp", "-m", "comment", "--comment", `dnat name: "bridge" id: "42"`, "-m", "multiport", "--dports", "3927", "-j", "CNI-DN-f8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitRule(tt.line); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitRule(%q) =\n%q\nwant\n%q", tt.line, got, tt.want)
			}
		})
	}
}
