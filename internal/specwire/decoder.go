package specwire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	// ErrTruncated: the input ends inside a value, or a length or count
	// promises more than the input holds.
	ErrTruncated error = &classified{"truncated input", errdefs.ErrInvalidArgument}
	// ErrMalformed: a value the encoder never writes (an overlong varint,
	// a bool other than 0 or 1, a number out of its field's range, an
	// unknown format version).
	ErrMalformed error = &classified{"malformed input", errdefs.ErrInvalidArgument}
)

// classified is fmt.Errorf("%s: %w", msg, err) without fmt: package
// initialisation runs in every container's init, where a first use of fmt
// costs more than all the decoding.
type classified struct {
	msg string
	err error
}

func (e *classified) Error() string { return e.msg + ": " + e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// Decoder reads what an Encoder wrote. Its error is sticky: the first
// failure is kept, every later read returns a zero value without looking at
// the input, and Err reports it. Decode a whole message, then check Err once
// — and do not act on anything decoded before checking it.
//
// The input is copied once, into a string, and every decoded string is a
// slice of that copy: decoding a spec costs one allocation for all of its
// strings instead of one per string. The price is that any string kept
// from the result keeps the whole input alive, which suits the init: the
// config lives as long as the process.
//
// Nothing is allocated on the strength of a length or count before it is
// checked against the bytes that remain, so a hostile or short input can
// make the Decoder allocate at most a small multiple of its own size.
type Decoder struct {
	b   []byte // the caller's input, for Rest
	s   string // a copy of b; decoded strings point into it
	off int
	err error
}

// NewDecoder returns a Decoder reading b. It copies b; the caller may reuse
// b once NewDecoder returns, except through Rest.
func NewDecoder(b []byte) *Decoder {
	return &Decoder{b: b, s: string(b)}
}

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Rest returns the input not yet read: it aliases the slice given to
// NewDecoder. It is nil after an error.
func (d *Decoder) Rest() []byte {
	if d.err != nil {
		return nil
	}
	return d.b[d.off:]
}

// fail records the first error and moves to the end of the input, so every
// later read finds nothing and returns zero without touching memory.
func (d *Decoder) fail(what string, kind error) {
	if d.err == nil {
		d.err = fmt.Errorf("specwire: %s at byte %d: %w", what, d.off, kind)
	}
	d.off = len(d.s)
}

// ReadUvarint reads what Encoder.Uvarint wrote.
func (d *Decoder) ReadUvarint() uint64 {
	// One byte covers nearly every length, count and id in a spec.
	if d.off < len(d.s) && d.s[d.off] < 0x80 {
		v := d.s[d.off]
		d.off++
		return uint64(v)
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off >= len(d.s) {
			d.fail("varint", ErrTruncated)
			return 0
		}
		c := d.s[d.off]
		d.off++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail("varint overflows 64 bits", ErrMalformed)
	return 0
}

// ReadVarint reads what Encoder.Varint wrote.
func (d *Decoder) ReadVarint() int64 {
	ux := d.ReadUvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// ReadBool reads what Encoder.Bool wrote.
func (d *Decoder) ReadBool() bool {
	if d.off >= len(d.s) {
		d.fail("bool", ErrTruncated)
		return false
	}
	c := d.s[d.off]
	if c > 1 {
		d.fail("bool", ErrMalformed)
		return false
	}
	d.off++
	return c == 1
}

// ReadString reads what Encoder.String wrote. It is not named String so
// that a *Decoder is not a fmt.Stringer: printing one must not consume it.
func (d *Decoder) ReadString() string {
	n := d.ReadUvarint()
	if n > uint64(len(d.s)-d.off) {
		d.fail("string length", ErrTruncated)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// ReadStrings reads what Encoder.Strings wrote: nil stays nil.
func (d *Decoder) ReadStrings() []string { return readStrings[string](d) }

// count reads a slice or map header written by Encoder.count. minSize is
// the fewest bytes one element can take; a count that the remaining input
// cannot hold fails here, before the caller allocates for it.
func (d *Decoder) count(minSize int) (n int, isNil bool) {
	v := d.ReadUvarint()
	if v == 0 {
		return 0, true // nil, or an error already recorded
	}
	if v-1 > uint64((len(d.s)-d.off)/minSize) {
		d.fail("count", ErrTruncated)
		return 0, true
	}
	return int(v - 1), false
}

func readStrings[T ~string](d *Decoder) []T {
	n, isNil := d.count(1)
	if isNil {
		return nil
	}
	ss := make([]T, n)
	for i := range ss {
		ss[i] = T(d.ReadString())
	}
	return ss
}

// The spec's fields are narrower than 64 bits; a value that does not fit is
// one the encoder never wrote.

func (d *Decoder) readUint32() uint32 {
	v := d.ReadUvarint()
	if v > math.MaxUint32 {
		d.fail("uint32", ErrMalformed)
		return 0
	}
	return uint32(v)
}

func (d *Decoder) readInt32() int32 {
	v := d.ReadVarint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("int32", ErrMalformed)
		return 0
	}
	return int32(v)
}

func (d *Decoder) readUint() uint {
	v := d.ReadUvarint()
	if v > math.MaxUint {
		d.fail("uint", ErrMalformed)
		return 0
	}
	return uint(v)
}

func (d *Decoder) readInt() int {
	v := d.ReadVarint()
	if v < math.MinInt || v > math.MaxInt {
		d.fail("int", ErrMalformed)
		return 0
	}
	return int(v)
}
