package specwire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The JSON side: config.json decoded without reflection.
//
// encoding/json builds a decoder per type by reflection the first time it
// meets the type, and the runtime is a fresh process on every container
// start: the first json.Unmarshal of runc's default spec costs it about
// 1.1 ms, and the quick partial decodes create did before it (the init's
// namespaces, the cgroup's limits) another 0.3 ms, on the path every start
// waits for. DecodeJSON walks the bytes once with a small hand-written
// reader and fills specs.Spec field by field, in tens of microseconds.
//
// It decodes what encoding/json would, with the same rules: keys match
// field names case-insensitively, null leaves a field at its zero value,
// an empty array or object gives an empty, non-nil slice or map, integers
// must fit their field and have no fraction or exponent, unknown keys are
// skipped (but must be valid JSON), and nothing may follow the top-level
// value. TestDecodeJSONMatchesEncodingJSON holds it to that for every
// field of the spec. The non-Linux sections (Solaris, Windows, VM, ZOS,
// FreeBSD) are skipped: the runtime runs on Linux only.

// ErrJSON classifies malformed or mistyped JSON.
var ErrJSON = errors.New("invalid JSON")

// jsonReader reads one JSON document. The first error sticks: every read
// after it returns a zero value, and loops over objects and arrays stop.
type jsonReader struct {
	b     []byte
	i     int
	depth int
	err   error
}

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot
// exhaust the stack.
const maxDepth = 10000

func (r *jsonReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: offset %d: %s", ErrJSON, r.i, fmt.Sprintf(format, args...))
	}
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next significant byte, 0 at the end or after an error.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.err != nil || r.i >= len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// null consumes a null literal if one is next.
func (r *jsonReader) null() bool {
	if r.peek() != 'n' {
		return false
	}
	r.literal("null")
	return true
}

func (r *jsonReader) literal(lit string) {
	if len(r.b)-r.i < len(lit) || string(r.b[r.i:r.i+len(lit)]) != lit {
		r.fail("invalid literal")
		return
	}
	r.i += len(lit)
}

// object calls field for each key of an object (or not at all for null);
// field must consume the value. Keys are passed lower-cased (ASCII), since
// encoding/json matches them to field names without regard to case.
func (r *jsonReader) object(field func(key string)) { r.members(true, field) }

// members calls field for each member of an object, with the key
// lower-cased if lower, and reports whether it read a whole object (false
// for null and on error).
func (r *jsonReader) members(lower bool, field func(key string)) bool {
	if r.null() {
		return false
	}
	if r.peek() != '{' {
		r.typeError("object")
		return false
	}
	r.enter()
	r.i++
	if r.peek() == '}' {
		r.i++
		r.depth--
		return true
	}
	for r.err == nil {
		if r.peek() != '"' {
			r.fail("object key must be a string")
			return false
		}
		key := r.rawString()
		if lower {
			key = lowerASCII(key)
		}
		if r.peek() != ':' {
			r.fail("expected ':' after object key")
			return false
		}
		r.i++
		field(key)
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			r.depth--
			return true
		default:
			r.fail("expected ',' or '}' in object")
		}
	}
	return false
}

// array calls elem for each element of an array, which elem must consume,
// and reports whether there was an array (false for null).
func (r *jsonReader) array(elem func()) bool {
	if r.null() {
		return false
	}
	if r.peek() != '[' {
		r.typeError("array")
		return false
	}
	r.enter()
	r.i++
	if r.peek() == ']' {
		r.i++
		r.depth--
		return true
	}
	for r.err == nil {
		elem()
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			r.depth--
			return true
		default:
			r.fail("expected ',' or ']' in array")
		}
	}
	return false
}

func (r *jsonReader) enter() {
	r.depth++
	if r.depth > maxDepth {
		r.fail("exceeded max depth")
	}
}

func (r *jsonReader) typeError(want string) {
	if r.err == nil && r.i < len(r.b) {
		r.fail("cannot unmarshal %q into %s", r.b[r.i], want)
		return
	}
	r.fail("unexpected end of input")
}

// str reads a string ("" for null).
func (r *jsonReader) str() string {
	if r.null() {
		return ""
	}
	if r.peek() != '"' {
		r.typeError("string")
		return ""
	}
	return r.rawString()
}

// rawString reads the string at r.i (which is '"'). Plain strings, the
// common case, are copied as they are; strings with escapes, control
// characters or non-ASCII bytes go through encoding/json for its exact
// unquoting (invalid UTF-8 becomes U+FFFD): for a string that costs no
// reflection set-up.
func (r *jsonReader) rawString() string {
	start := r.i
	r.i++
	plain := true
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if plain {
				return string(r.b[start+1 : r.i-1])
			}
			var s string
			if err := json.Unmarshal(r.b[start:r.i], &s); err != nil {
				r.i = start
				r.fail("invalid string: %v", err)
				return ""
			}
			return s
		case c == '\\':
			plain = false
			r.i += 2
		case c < 0x20 || c >= utf8.RuneSelf:
			plain = false
			r.i++
		default:
			r.i++
		}
	}
	r.fail("unterminated string")
	return ""
}

// boolean reads true or false (false for null).
func (r *jsonReader) boolean() bool {
	switch r.peek() {
	case 't':
		r.literal("true")
		return true
	case 'f':
		r.literal("false")
	case 'n':
		r.literal("null")
	default:
		r.typeError("bool")
	}
	return false
}

// number returns the next number literal, checked against JSON's grammar
// ("" for null).
func (r *jsonReader) number() string {
	if r.null() {
		return ""
	}
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := func() int {
		n := 0
		for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	switch {
	case r.i < len(r.b) && r.b[r.i] == '0':
		r.i++
	case digits() == 0:
		r.i = start
		r.typeError("number")
		return ""
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if digits() == 0 {
			r.fail("invalid number")
			return ""
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			r.fail("invalid number")
			return ""
		}
	}
	return string(r.b[start:r.i])
}

// signed reads an integer that must fit in bits (0 for null).
func (r *jsonReader) signed(bits int) int64 {
	n := r.number()
	if n == "" {
		return 0
	}
	v, err := strconv.ParseInt(n, 10, bits)
	if err != nil {
		r.fail("cannot unmarshal number %s into a %d-bit integer", n, bits)
	}
	return v
}

// unsigned reads a non-negative integer that must fit in bits (0 for null).
func (r *jsonReader) unsigned(bits int) uint64 {
	n := r.number()
	if n == "" {
		return 0
	}
	v, err := strconv.ParseUint(n, 10, bits)
	if err != nil {
		r.fail("cannot unmarshal number %s into an unsigned %d-bit integer", n, bits)
	}
	return v
}

// skip reads past any value, checking its syntax.
func (r *jsonReader) skip() {
	switch c := r.peek(); {
	case c == '{':
		r.object(func(string) { r.skip() })
	case c == '[':
		r.array(r.skip)
	case c == '"':
		r.rawString()
	case c == 't':
		r.literal("true")
	case c == 'f':
		r.literal("false")
	case c == 'n':
		r.literal("null")
	default:
		r.number()
	}
}

// end checks that nothing but white space follows the document.
func (r *jsonReader) end() {
	if r.peek() != 0 {
		r.fail("invalid character after top-level value")
	}
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// Generic shapes, each null-aware like encoding/json.

// ptrTo reads a value into a new T, or nil for null.
func ptrTo[T any](r *jsonReader, read func(*T)) *T {
	if r.null() {
		return nil
	}
	v := new(T)
	read(v)
	return v
}

// sliceOf reads an array (nil for null, empty and non-nil for []).
func sliceOf[T any](r *jsonReader, read func(*T)) []T {
	out := []T{}
	if !r.array(func() {
		var v T
		read(&v)
		out = append(out, v)
	}) {
		return nil
	}
	return out
}

// mapOf reads an object into a map (nil for null, empty for {}). Keys keep
// their case.
func mapOf[T any](r *jsonReader, read func(*T)) map[string]T {
	if r.null() {
		return nil
	}
	out := map[string]T{}
	if !r.members(false, func(key string) {
		var v T
		read(&v)
		out[key] = v
	}) {
		return nil
	}
	return out
}

// stringMap reads an object of strings.
func stringMap(r *jsonReader) map[string]string {
	return mapOf(r, func(v *string) { *v = r.str() })
}

// strings reads an array of strings (or of a string type).
func stringsOf[T ~string](r *jsonReader) []T {
	return sliceOf(r, func(v *T) { *v = T(r.str()) })
}
