package specwire

import "encoding/binary"

// Encoder appends values to B in the specwire format. It never fails: every
// Go value it accepts has an encoding. Encode with the Encoder methods and
// decode with the Decoder methods of the same names (Read-prefixed), in the
// same order; the format carries no field tags, so the order is the schema.
type Encoder struct {
	B []byte
}

// Uvarint appends v as an unsigned varint (1 byte below 128).
func (e *Encoder) Uvarint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }

// Varint appends v as a zig-zag varint, so small negative numbers (an fd of
// -1) stay one byte.
func (e *Encoder) Varint(v int64) { e.B = binary.AppendVarint(e.B, v) }

// Bool appends one byte, 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

// String appends the length of s and its bytes.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.B = append(e.B, s...)
}

// Strings appends ss, keeping nil distinct from empty.
func (e *Encoder) Strings(ss []string) { putStrings(e, ss) }

// count appends a slice or map header: 0 for nil, n+1 for n elements. It
// keeps nil distinct from empty at no cost in size.
func (e *Encoder) count(isNil bool, n int) {
	if isNil {
		e.B = append(e.B, 0)
		return
	}
	e.Uvarint(uint64(n) + 1)
}

// putStrings serves the spec's many named string types (Arch,
// LinuxSeccompFlag, ...) without converting their slices.
func putStrings[T ~string](e *Encoder, ss []T) {
	e.count(ss == nil, len(ss))
	for _, s := range ss {
		e.String(string(s))
	}
}
