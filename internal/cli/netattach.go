package cli

import (
	"encoding/csv"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
)

// netAttachment is one --network value of run or create: a network
// reference alone ("app", "host", "container:web") or the docker CLI's
// advanced syntax, name=app,alias=a,ip=10.89.0.9,mac-address=..., which
// carries the endpoint settings of that network. Repeating --network
// connects the container to every network named (API 1.44).
type netAttachment struct {
	target     string
	aliases    []string
	ip, ip6    string
	mac        string
	driverOpts map[string]string
	linkLocal  []string
}

// parseNetAttachment reads one --network value as the docker CLI does: a
// value with "=" is the advanced syntax, anything else a network.
func parseNetAttachment(v string) (netAttachment, error) {
	if !strings.Contains(v, "=") {
		return netAttachment{target: v}, nil
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return netAttachment{}, fmt.Errorf("invalid --network %q: %w", v, err)
	}
	var a netAttachment
	for _, f := range fields {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return netAttachment{}, fmt.Errorf("invalid field %q must be a key=value pair", f)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "name":
			a.target = val
		case "alias":
			a.aliases = append(a.aliases, val)
		case "ip":
			a.ip = val
		case "ip6":
			a.ip6 = val
		case "mac-address":
			a.mac = val
		case "link-local-ip":
			a.linkLocal = append(a.linkLocal, val)
		case "driver-opt":
			dk, dv, ok := strings.Cut(val, "=")
			if !ok {
				return netAttachment{}, fmt.Errorf("invalid key value pair format in driver options")
			}
			if a.driverOpts == nil {
				a.driverOpts = map[string]string{}
			}
			a.driverOpts[dk] = dv
		default:
			return netAttachment{}, fmt.Errorf("invalid field key %s", k)
		}
	}
	if a.target == "" {
		return netAttachment{}, fmt.Errorf("network name/id is not specified")
	}
	return a, nil
}

// mergeLegacy puts run's --ip, --ip6, --network-alias and --mac-address
// on the first network, as the docker CLI does; naming one both ways is
// a conflict, not an override.
func (a *netAttachment) mergeLegacy(o *netFlags) error {
	for _, c := range []struct {
		flag, field string
		legacy      bool
		dst         *string
		v           string
	}{
		{"--ip", "IPv4 address", o.ip != "", &a.ip, o.ip},
		{"--ip6", "IPv6 address", o.ip6 != "", &a.ip6, o.ip6},
		{"--mac-address", "MAC address", o.mac != "", &a.mac, o.mac},
	} {
		if !c.legacy {
			continue
		}
		if *c.dst != "" {
			return fmt.Errorf("conflicting options: cannot specify both %s and per-network %s", c.flag, c.field)
		}
		*c.dst = c.v
	}
	if len(o.aliases) > 0 {
		if len(a.aliases) > 0 {
			return fmt.Errorf("conflicting options: cannot specify both --network-alias and per-network alias")
		}
		a.aliases = o.aliases
	}
	return nil
}

// settings is the attachment's EndpointSettings.
func (a *netAttachment) settings() (*nettypes.EndpointSettings, error) {
	es := &nettypes.EndpointSettings{Aliases: a.aliases, DriverOpts: a.driverOpts}
	for _, ip := range []struct {
		flag, v string
		v6      bool
	}{{"--ip", a.ip, false}, {"--ip6", a.ip6, true}} {
		if ip.v == "" {
			continue
		}
		addr, err := netip.ParseAddr(ip.v)
		if err != nil {
			return nil, fmt.Errorf("invalid IP address %q for %s", ip.v, ip.flag)
		}
		if es.IPAMConfig == nil {
			es.IPAMConfig = &nettypes.EndpointIPAMConfig{}
		}
		if ip.v6 {
			es.IPAMConfig.IPv6Address = addr
		} else {
			es.IPAMConfig.IPv4Address = addr
		}
	}
	for _, l := range a.linkLocal {
		addr, err := netip.ParseAddr(l)
		if err != nil {
			return nil, fmt.Errorf("invalid link-local IP address %q", l)
		}
		if es.IPAMConfig == nil {
			es.IPAMConfig = &nettypes.EndpointIPAMConfig{}
		}
		es.IPAMConfig.LinkLocalIPs = append(es.IPAMConfig.LinkLocalIPs, addr)
	}
	if a.mac != "" {
		hw, err := nettypesMAC(a.mac)
		if err != nil {
			return nil, fmt.Errorf("invalid MAC address %q", a.mac)
		}
		es.MacAddress = hw
	}
	return es, nil
}

// endpointsConfig turns the --network values and run's per-endpoint flags
// into the create request's network mode and EndpointsConfig, as the
// docker CLI builds them: the first network is the mode and takes the
// legacy flags; one network without settings sends no endpoint at all
// (the engine makes it); user-defined and built-in networks do not mix.
func (o *netFlags) endpointsConfig() (mode string, eps map[string]*nettypes.EndpointSettings, err error) {
	eps = map[string]*nettypes.EndpointSettings{}
	if len(o.networks) == 0 {
		a := netAttachment{target: "default"}
		if err := a.mergeLegacy(o); err != nil {
			return "", nil, err
		}
		es, err := a.settings()
		if err != nil {
			return "", nil, err
		}
		if !reflect.DeepEqual(*es, nettypes.EndpointSettings{}) {
			eps["default"] = es
		}
		return "", eps, nil
	}
	var userDefined, builtIn bool
	for i, v := range o.networks {
		a, err := parseNetAttachment(v)
		if err != nil {
			return "", nil, err
		}
		if container.NetworkMode(a.target).IsUserDefined() {
			userDefined = true
		} else {
			builtIn = true
		}
		if i == 0 {
			mode = a.target
			if err := a.mergeLegacy(o); err != nil {
				return "", nil, err
			}
		}
		es, err := a.settings()
		if err != nil {
			return "", nil, err
		}
		if _, dup := eps[a.target]; dup {
			return "", nil, fmt.Errorf("network %q is specified multiple times", a.target)
		}
		if i == 0 && len(o.networks) == 1 && reflect.DeepEqual(*es, nettypes.EndpointSettings{}) {
			continue
		}
		eps[a.target] = es
	}
	if userDefined && builtIn {
		return "", nil, fmt.Errorf("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return mode, eps, nil
}
