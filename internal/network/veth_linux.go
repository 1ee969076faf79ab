package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rtnl is a blocking NETLINK_ROUTE socket for the native driver's
// per-container requests: it sends several requests in one sendto (the
// kernel runs them in order and acknowledges each), which the netlink
// package's one-request-one-reply helpers cannot, and parses no more of
// a reply than the ack or the one index it needs. An attach is three
// round trips: the veth pair (its host end enslaved, IPv6 address
// generation off and up; its peer moved into the namespace); the peer's
// index; its addresses, link-up and routes.
type rtnl struct {
	fd  int
	seq uint32
}

func openRTNL() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "socket(NETLINK_ROUTE)", Err: err}
	}
	// Acks of failed requests carry no copy of the request.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, &os.SyscallError{Syscall: "bind(NETLINK_ROUTE)", Err: err}
	}
	return &rtnl{fd: fd}, nil
}

// openRTNLIn opens the socket inside the namespace ns: a socket stays in
// the namespace it was created in, so only its creation switches the
// (locked) thread's namespace, and back.
func openRTNLIn(ns netns.NsHandle) (r *rtnl, err error) {
	err = onLockedThread(func() error {
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			return &os.SyscallError{Syscall: "setns", Err: err}
		}
		return nil
	}, func() (err error) {
		r, err = openRTNL()
		return err
	})
	return r, err
}

func (r *rtnl) close() { unix.Close(r.fd) }

// do sends reqs in one sendto and waits for every acknowledgement. The
// kernel goes on with the next request after one fails; the first error
// is returned, with the index of its request.
func (r *rtnl) do(reqs ...*nl.NetlinkRequest) (int, error) {
	var buf []byte
	first := r.seq + 1
	for _, q := range reqs {
		r.seq++
		q.Seq = r.seq
		q.Flags |= unix.NLM_F_ACK
		buf = append(buf, q.Serialize()...)
	}
	if err := unix.Sendto(r.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, &os.SyscallError{Syscall: "sendto(NETLINK_ROUTE)", Err: err}
	}
	failed, ferr := -1, error(nil)
	pending := len(reqs)
	if pending > 0 {
		err := r.recv(make([]byte, 16<<10), func(m *syscall.NetlinkMessage) (bool, error) {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq < first || m.Header.Seq > r.seq || len(m.Data) < 4 {
				return false, nil
			}
			pending--
			if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 && failed < 0 {
				failed, ferr = int(m.Header.Seq-first), unix.Errno(errno)
			}
			return pending == 0, nil
		})
		if err != nil {
			return 0, err
		}
	}
	if failed >= 0 {
		return failed, ferr
	}
	return 0, nil
}

// vethRequest is the RTM_NEWLINK of a veth pair: the host end host,
// enslaved to master (and down: see addrGenNoneRequest); the peer ifName
// with mac, moved into the namespace nsFd. (The peer's index cannot be
// chosen: veth honours one only when the host end's is chosen too.) Both
// ends get one queue each: a veth otherwise starts with a queue per CPU
// and drops to one right after registration, and shrinking a registered
// device's queues waits for an RCU grace period under the RTNL lock
// (0.5 ms and more of every attach here).
func vethRequest(host, ifName string, master, mtu int, mac net.HardwareAddr, nsFd int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(host)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1)))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1)))
	if mtu > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	// The peer cannot be up at creation (the kernel opens it before it
	// knows its other end: ENOTCONN); it comes up in the namespace's
	// batch (linkUpRequest).
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(ifName))
	peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(mac))
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFd)))
	peer.AddRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1))
	peer.AddRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1))
	if mtu > 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu)))
	}
	req.AddData(info)
	return req
}

// linkIndex asks the namespace of r for the index of the interface name.
func (r *rtnl) linkIndex(name string) (int, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	r.seq++
	req.Seq = r.seq
	if err := unix.Sendto(r.fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, &os.SyscallError{Syscall: "sendto(NETLINK_ROUTE)", Err: err}
	}
	index := 0
	err := r.recv(make([]byte, 32<<10), func(m *syscall.NetlinkMessage) (bool, error) {
		if m.Header.Seq != req.Seq {
			return false, nil
		}
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
					return true, unix.Errno(errno)
				}
			}
			return true, fmt.Errorf("link %s: empty reply", name)
		case unix.RTM_NEWLINK:
			if len(m.Data) < unix.SizeofIfInfomsg {
				return true, fmt.Errorf("link %s: short reply", name)
			}
			index = int(nl.DeserializeIfInfomsg(m.Data).Index)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return 0, err
	}
	return index, nil
}

// recv reads the socket's replies into rb and hands each message to
// each until it reports done or an error.
func (r *rtnl) recv(rb []byte, each func(m *syscall.NetlinkMessage) (done bool, err error)) error {
	for {
		n, _, err := unix.Recvfrom(r.fd, rb, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.SyscallError{Syscall: "recvfrom(NETLINK_ROUTE)", Err: err}
		}
		msgs, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return fmt.Errorf("netlink reply: %w", err)
		}
		for i := range msgs {
			if done, err := each(&msgs[i]); done || err != nil {
				return err
			}
		}
	}
}

// linkRef names a device in a RTM_SETLINK: by index, or when index is
// 0 by name (a request batched behind the one creating the device does
// not know its index).
func linkRef(req *nl.NetlinkRequest, index int, name string) *nl.IfInfomsg {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	if index == 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	}
	return msg
}

// linkUpRequest sets a device up.
func linkUpRequest(index int, name string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, 0)
	msg := linkRef(req, index, name)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	return req
}

// addrGenNoneRequest turns IPv6 address generation off on a device that
// is still down: it gets no link-local address when it comes up, so no
// duplicate address detection, router solicitation or MLD report goes
// out of it. For the host end of a veth, a bridge port that needs no
// address of any family, and for a container's interface on an
// IPv4-only network (Docker disables IPv6 there too). The kernel takes
// IFLA_AF_SPEC only for a device that exists, so not at creation, and
// applies it after the flags in one request: hence a request of its own
// before the link-up, in the same batch.
func addrGenNoneRequest(index int, name string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, 0)
	linkRef(req, index, name)
	mode := nl.NewRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{1}) // IN6_ADDR_GEN_MODE_NONE
	af := nl.NewRtAttr(unix.AF_INET6, mode.Serialize())
	req.AddData(nl.NewRtAttr(unix.IFLA_AF_SPEC, af.Serialize()))
	return req
}

// addrRequest adds p to interface index; IFA_F_NODAD: the address is
// ours by the lease, so duplicate address detection would only hold an
// IPv6 address tentative (unusable) for a second. IPv4 ignores the flag.
func addrRequest(index int, p netip.Prefix) *nl.NetlinkRequest {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	msg := nl.NewIfAddrmsg(family)
	msg.Index, msg.Prefixlen, msg.Flags = uint32(index), uint8(p.Bits()), unix.IFA_F_NODAD
	req.AddData(msg)
	a := p.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a))
	if family == unix.AF_INET && p.Bits() < 31 {
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, lastAddr(p).AsSlice()))
	}
	return req
}

// defaultRouteRequest adds the default route via gw on interface index.
func defaultRouteRequest(index int, gw netip.Addr) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	msg := nl.NewRtMsg()
	msg.Family = unix.AF_INET
	if gw.Is6() {
		msg.Family = unix.AF_INET6
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, gw.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(index))))
	return req
}
