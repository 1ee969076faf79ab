package specwire

import (
	"slices"
	"unicode/utf8"
)

// AppendJSONString is JSONReader's counterpart for writing: it appends s
// quoted as encoding/json does with SetEscapeHTML(false) (quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped), for callers that write a small record
// of their own without json.Marshal's reflection. The HTML escaping of <, >
// and & is left out: a file read back as JSON needs not be safe to embed in
// a web page.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript: encoding/json escapes them.
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// AppendJSONStringMap appends m as a JSON object with its keys in order, as
// encoding/json writes a map (nil as {}; a caller that wants null writes it).
// It reads back with JSONReader.StringMap.
func AppendJSONStringMap[K ~string](b []byte, m map[K]string) []byte {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, string(k))
		b = append(b, ':')
		b = AppendJSONString(b, m[k])
	}
	return append(b, '}')
}
