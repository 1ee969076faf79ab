package specwire

// JSONReader is DecodeJSON's reader, for callers that decode a small
// record of their own without encoding/json's reflection (the runtime's
// state.json, read by every command in a fresh process). Values are read in
// document order; the first error sticks and is returned by End, and every
// read after it returns a zero value. Null reads as a zero value (nil for
// the map), as with encoding/json.
type JSONReader struct{ r jsonReader }

// NewJSONReader reads the JSON document in b.
func NewJSONReader(b []byte) *JSONReader { return &JSONReader{r: jsonReader{b: b}} }

// Object calls field for each member of an object, with the key lower-cased
// (ASCII); field must read the value, or Skip it.
func (j *JSONReader) Object(field func(key string)) { j.r.object(field) }

// String reads a string.
func (j *JSONReader) String() string { return j.r.str() }

// Bool reads a boolean.
func (j *JSONReader) Bool() bool { return j.r.boolean() }

// Int reads an integer that fits in bits.
func (j *JSONReader) Int(bits int) int64 { return j.r.signed(bits) }

// Uint reads a non-negative integer that fits in bits.
func (j *JSONReader) Uint(bits int) uint64 { return j.r.unsigned(bits) }

// StringMap reads an object of strings.
func (j *JSONReader) StringMap() map[string]string { return stringMap(&j.r) }

// Raw returns a copy of the next value's bytes, checked to be valid JSON,
// as json.RawMessage would hold them (null included).
func (j *JSONReader) Raw() []byte {
	j.r.ws()
	start := j.r.i
	j.r.skip()
	if j.r.err != nil {
		return nil
	}
	return append([]byte(nil), j.r.b[start:j.r.i]...)
}

// Skip reads past a value.
func (j *JSONReader) Skip() { j.r.skip() }

// Fail records an error for a value the caller found unacceptable.
func (j *JSONReader) Fail(what string) { j.r.fail("%s", what) }

// End checks that nothing follows the document and returns the first
// error, which wraps ErrJSON.
func (j *JSONReader) End() error {
	j.r.end()
	return j.r.err
}
