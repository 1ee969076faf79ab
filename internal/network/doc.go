// Package network gives containers their networks: bridge networks with a
// built-in driver or any CNI plugin chain, per-container network
// namespaces, IPAM, published ports, /etc/hosts and /etc/resolv.conf,
// isolation between networks and a small DNS server per user-defined
// network.
//
// # Networks, and which driver runs them
//
// A network is metadata <root>/networks/<name>.json beside a CNI network
// configuration list <name>.conflist. The conflist berth generates chains
// the plugins of Debian's containernetworking-plugins (/usr/lib/cni, or
// $BERTH_CNI_PATH):
//
//	bridge (host-local IPAM) → portmap → firewall → tuning
//
// Store.Native decides per attach: a network whose metadata says Native
// (every network this version creates) and whose conflist is still
// byte-for-byte the one berth generates from that metadata is run by the
// built-in driver below; anything else — a conflist the user edited or
// replaced with other plugins, or a network an older berth created — is
// executed by berth's CNI executor (cniexec_linux.go: the plugin protocol
// and libcni's result-cache format, without libcni, whose invoker links
// OpenTelemetry into every process), so any CNI plugin works as a network
// driver and the CRI side can reuse the same path.
//
// The default network "bridge" is the Linux bridge berth0 on
// 10.88.0.0/16 (gateway 10.88.0.1, masquerade), created on first use. A
// store whose root is not the default one names its bridges after a hash
// of root and network name and picks a free subnet, so isolated instances
// (tests, --root) never share a bridge; a host-wide claim in
// /run/berth-subnets keeps two instances that create networks at the same
// time, before either bridge exists, from picking the same subnet.
// $BERTH_BRIDGE and $BERTH_SUBNET override the default network's bridge
// and subnet.
//
// # The native driver
//
// The built-in equivalent of bridge + host-local + portmap + firewall,
// in process, with no exec for a container without published ports:
//
//   - Record first: <state>/network/endpoints/<container>/<ifname>.json is
//     written before anything touches the kernel. Everything teardown
//     removes is named from the container ID and interface (the host veth
//     "veth"+hash, the leases, the port chain), so a process killed at any
//     point leaves a record that the next Detach (rm, start, prune) turns
//     into a complete teardown.
//   - Bridge once: the bridge, its gateway addresses (IPv6 with
//     IFA_F_NODAD), ip_forward / IPv6 forwarding / route_localnet and the
//     network's iptables rules are set up under the network's lock the
//     first time (marked in <state>/network/native); afterwards an attach
//     checks the bridge with one sysfs read.
//   - IPAM: a lease is a symlink <state>/network/ipam/<network>/<address>
//     → "<container>/<ifname>"; symlink(2) is an atomic create-if-absent,
//     so no address is handed out twice, across processes too. Allocation
//     is round-robin under a flock; static --ip and --ip6 are honoured
//     (Conflict if taken; an address outside the network's subnets, or an
//     IPv6 one on a network without IPv6, is refused with dockerd's
//     words). A dual-stack attachment leases its IPv4 and IPv6 address
//     together or neither: when the second cannot be had the first is
//     released at once. Leases are released by scanning for the container
//     ID, which also reclaims those of an attach that crashed before
//     recording them.
//   - veth: one RTM_NEWLINK creates the pair with its peer directly in
//     the container's namespace (IFLA_NET_NS_FD), the host end enslaved
//     to the bridge, the MAC 02:42:<IPv4> or --mac-address (a user's MAC
//     is recorded beside the leases, and a derived MAC some recorded one
//     already is gives way to a fresh one outside 02:42: macclaim.go), one
//     queue per end (a veth otherwise starts with a queue per CPU and
//     shrinks to one after registration, which waits for an RCU grace
//     period under RTNL); in the same batch the host end gets IPv6
//     address generation turned off (a bridge port needs no address, and
//     so sends no DAD, router solicitation or MLD) and comes up. A
//     netlink socket opened in the namespace (the
//     only namespace switch is its creation) looks up the peer's index
//     and sends the addresses (IFA_F_NODAD: an IPv6 address is usable at
//     once), link-up and default routes as one batch, on an IPv4-only
//     network with IPv6 address generation off (no link-local address:
//     Docker disables IPv6 there too): three round trips per attach
//     (veth_linux.go).
//   - Firewall per network (nativefw_linux.go has the layout): FORWARD →
//     BERTH-FORWARD (first -i <bridge> -o <bridge> -j ACCEPT: traffic
//     between containers of one network skips the isolation chain, which
//     has a rule per berth bridge; then isolation, then accept the
//     bridge's other traffic), masquerade of the subnet unless
//     --internal, for IPv4 and IPv6.
//   - Published ports: one iptables-restore --noflush per container with a
//     chain BERTH-DN-<ID[:12]> (mark hairpin and 127.0.0.1 sources for
//     masquerade, DNAT) and its jump from BERTH-HOSTPORTS (PREROUTING and
//     OUTPUT, local destinations), commented with the container ID;
//     teardown removes both in one call, or sweeps by the ID after a crash.
//     A dual-stack network publishes on IPv6 too (one ip6tables-restore):
//     the host's IPv6 addresses answer, ::1 does not (IPv6 has no
//     route_localnet).
//   - Teardown of a whole container (DetachAll) leaves the veth to the
//     namespace's end: RemoveNetNS follows, and the kernel deletes a dying
//     namespace's devices in batched cleanup work, where deleting a veth
//     synchronously waits for an RCU grace period under RTNL (10-40 ms
//     here). Detaching one network (disconnect) deletes it.
//
// All dynamic state lives under the state directory (cleared by a reboot
// together with every namespace, veth and iptables rule): native records
// and leases, host-local's leases in <state>/network/ipam, the CNI result
// cache (libcni's format) in <state>/network/cni, DNS records in <state>/network/dns.
// Nothing goes to /var/lib/cni, so two instances never collide.
//
// # Attaching a container
//
// The engine creates a network namespace per container (NewNetNS: a nsfs
// bind mount at <state>/netns/<id>, made by unshare(CLONE_NEWNET) on a
// locked OS thread), attaches each network (native or CNI ADD), writes
// hosts, hostname and resolv.conf into the container's bundle and hands
// the namespace path to the OCI runtime. On a CNI network static
// addresses travel as CNI_ARGS IP= when there is one (host-local's IP=
// takes exactly one) and, for IPv4 and IPv6 together, in the "ips"
// capability or, for a plugin that does not declare it, in the
// conventions' args.cni.ips, which host-local reads. `network connect` and
// `disconnect` on a running container edit its /etc/hosts in place
// (AddHostsEntry, RemoveHostsEntry): its address on that network under
// its hostname, added and removed, as Docker does. Published host ports are checked
// with a bind() first, so a taken port is a clear error rather than a
// DNAT rule that never matches. A CNI network's teardown runs CNI DEL with
// the runtime configuration cached at ADD, so it works after a
// crash, for a namespace that is gone, and twice in a row.
//
// # Published ports on CNI networks and 127.0.0.1
//
// The portmap plugin installs DNAT chains for PREROUTING and OUTPUT and,
// with "snat": true, masquerades hairpin and localhost traffic. Packets to
// 127.0.0.1 that are DNATed to a bridge address are routed only when
// route_localnet=1 on the outgoing interface; portmap sets it on the
// bridge when SNAT is on (the native driver at bridge setup).
//
// # Isolation
//
// Every bridge gets two rules in the shared chains BERTH-ISOLATION-1/2
// (jumped to from FORWARD, from BERTH-FORWARD and from the CNI firewall
// plugin's CNI-ADMIN chain): traffic entering from one berth bridge may not leave through
// another. An --internal network also drops everything that leaves its
// bridge for anywhere else, and its conflist has no default route and no
// masquerade.
//
// # Stale rules
//
// Rules outlive what they name when the host changes under berth (a
// bridge deleted with `ip link`, an instance's directories deleted with
// containers running, a berth killed between a CNI ADD and its
// bookkeeping). SweepStaleRules (sweep_linux.go), run by `network prune`,
// removes berth's own rules whose bridge, host veth or namespace is gone:
// rules in the BERTH-* chains naming a missing interface, a container's
// BERTH-DN- chain whose veth is gone or bridgeless, and CNI plugin rules
// only for container IDs that a host-wide marker in /run/berth-rules
// says berth attached. Bridge markers there also let the first store a
// process opens decide with a readdir and a stat per marker whether to
// sweep at all.
//
// # DNS
//
// A user-defined network's containers resolve each other by name, alias
// and short ID through a small DNS server (ServeDNS) listening on the
// network's gateway address, port 53, UDP and TCP (A and AAAA). A UDP
// reply larger than 512 bytes (or the query's EDNS size) goes out
// truncated, so the client asks again over TCP; queries over TCP are
// forwarded over TCP. It answers from one JSON record per
// attached container in <state>/network/dns/<network>/ (re-read when the
// directory changes), and forwards other names to the resolvers in the
// host's /etc/resolv.conf. The engine starts it (as `berth network
// dns-serve`) with the network's first container and stops it with the
// last. Containers on user networks get the gateway as their nameserver;
// the default network, as in Docker, uses the host's resolvers.
package network
