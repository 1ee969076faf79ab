// Package specwire is a compact binary encoding of the OCI runtime spec
// (runtime-spec v1.3.0) for the one hop where decoding speed matters: the
// parent runtime handing its config to the container's init.
//
// # Why
//
// The init is a freshly exec'd Go process, and container start waits for
// it. encoding/json builds its decoder for a type by reflection the first
// time it meets that type, and specs.Spec is a large tree of types: the
// first json.Unmarshal of a spec in a new process takes 1.2 ms (runc's
// default spec) to 1.6 ms (a Docker spec with its default seccomp profile),
// against 0.06 and 0.3 ms for the same call once warm. specwire has no
// reflection and nothing to warm: its first decode in a new process takes
// 11-12 µs and 55-90 µs for those two specs, with a seventh to a twelfth of
// json's allocations (medians of 15 runs on a busy 2-vCPU EPYC VM;
// go test -run '^$' -bench FreshProcess measures it again). The encoding is also smaller: 928 and 6,709 bytes
// against 1,700 and 9,170 of JSON.
//
// # Format
//
// A spec is a format-version byte followed by its fields in a fixed order,
// without tags: the order in the code is the schema, and AppendSpec and
// DecodeSpec are written side by side to keep it. Integers are varints
// (zig-zag for signed ones), strings a length then bytes, a pointer a
// presence byte then its value, and a slice or map its length plus one,
// with 0 for nil, so nil and empty survive the round trip distinctly. Maps
// are written in key order, so a spec always encodes to the same bytes.
// There is no compatibility across format versions: the parent and the
// init are one binary.
//
// The same primitives, Encoder and Decoder, are exported so that the
// runtime can frame its own small messages around a spec (the init config
// also carries a process of its own, hence Encoder.Process).
//
// # What is dropped
//
// Everything the init reads is encoded, exactly. DecodeSpec returns nil
// for what it does not need:
//
//   - Linux.Resources, Linux.NetDevices and Linux.IntelRdt: the parent
//     applies them from the host side (cgroup limits, moving network
//     devices into the namespace, the resctrl group); they are not encoded
//     at all, not even as a presence flag.
//   - Solaris, Windows, VM, ZOS and FreeBSD: the init runs on Linux only.
//
// A runtime-spec upgrade that adds a field fails TestEveryFieldRoundTrips
// until the field is encoded or added to its dropped list.
//
// # Hostile input
//
// DecodeSpec never panics, and checks every length and count against the
// bytes that remain before it allocates (FuzzDecodeSpec). Decoded strings
// share one copy of the input; see Decoder.
package specwire
