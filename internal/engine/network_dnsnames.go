package engine

import "slices"

// dnsNames are the names c answers to on a user-defined network with
// aliases, in dockerd's order (the first names the PTR record): its name,
// the aliases, its short ID, its hostname; each once. Inspect reports
// them as DNSNames; the network's DNS server answers each.
func dnsNames(c *Container, aliases []string) []string {
	names := append([]string{c.Name}, aliases...)
	names = append(names, shortID(c.ID), c.Config.Hostname)
	out := names[:0]
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// shortID is Docker's 12-digit form of a container ID.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
