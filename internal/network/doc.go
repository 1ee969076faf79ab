// Package network gives containers their networks: bridge networks made of
// CNI configurations run with the real CNI plugins, per-container network
// namespaces, published ports, /etc/hosts and /etc/resolv.conf, isolation
// between networks and a small DNS server per user-defined network.
//
// # Networks are CNI conflists
//
// A network is a CNI network configuration list stored at
// <root>/networks/<name>.conflist beside its metadata <name>.json. The
// conflists berth writes chain the plugins of Debian's
// containernetworking-plugins (/usr/lib/cni, or $BERTH_CNI_PATH):
//
//	bridge (host-local IPAM) → portmap → firewall → tuning
//
// and are executed through libcni, so a user may replace a conflist with
// any other CNI plugin chain and berth runs it as the network's driver.
// The default network "bridge" is the Linux bridge berth0 on 10.88.0.0/16
// (gateway 10.88.0.1, masquerade), created on first use. A store whose root
// is not the default one names its bridges after a hash of root and network
// name and picks a free subnet, so isolated instances (tests, --root) never
// share a bridge or an address range; $BERTH_BRIDGE and $BERTH_SUBNET
// override the default network's bridge and subnet.
//
// All dynamic state lives under the state directory (a tmpfs such as /run
// that a reboot clears together with every namespace, veth and iptables
// rule): host-local's leases in <state>/network/ipam, libcni's result cache
// in <state>/network/cni, DNS records in <state>/network/dns. Nothing goes
// to /var/lib/cni, so two instances with different --state never collide.
//
// # Attaching a container
//
// The engine creates a network namespace per container (NewNetNS: a nsfs
// bind mount at <state>/netns/<id>, made by unshare(CLONE_NEWNET) on a
// locked OS thread), runs CNI ADD for each attached network, writes hosts,
// hostname and resolv.conf into the container's bundle and hands the
// namespace path to the OCI runtime. Teardown runs CNI DEL with the runtime
// configuration libcni cached at ADD (port mappings included), so it works
// after a crash, for a namespace that is already gone, and twice in a row.
// Published host ports are checked with a bind() before CNI ADD so a taken
// port is a clear error rather than a DNAT rule that never matches.
//
// # Published ports and 127.0.0.1
//
// The portmap plugin installs DNAT chains for PREROUTING and OUTPUT (so the
// host's own addresses work) and, with "snat": true, masquerades hairpin
// and localhost traffic. Packets to 127.0.0.1 that are DNATed to a bridge
// address are routed only when route_localnet=1 on the outgoing interface;
// portmap sets it on the bridge when SNAT is on.
//
// # Isolation
//
// Every bridge gets two rules in the shared chains BERTH-ISOLATION-1/2
// (jumped to from FORWARD and from the CNI firewall plugin's CNI-ADMIN
// chain): traffic entering from one berth bridge may not leave through
// another. An --internal network also drops everything that leaves its
// bridge for anywhere else, and its conflist has no default route and no
// masquerade.
//
// # DNS
//
// A user-defined network's containers resolve each other by name, alias
// and short ID through a small DNS server (ServeDNS) listening on the
// network's gateway address, port 53. It answers from one JSON record per
// attached container in <state>/network/dns/<network>/ (re-read when the
// directory changes), and forwards other names to the resolvers in the
// host's /etc/resolv.conf. The engine starts it (as `berth network
// dns-serve`) with the network's first container and stops it with the
// last. Containers on user networks get the gateway as their nameserver;
// the default network, as in Docker, uses the host's resolvers.
package network
