package monitor

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The monitor reads and writes a handful of small, flat JSON documents
// (State, control requests, the runtime's log lines, HealthConfig). It does
// so by hand: encoding/json and the reflection it carries would be most of
// the binary, and every page of the binary a monitor maps is paid again per
// running container. State's encoding is byte-for-byte what encoding/json
// produces (a test holds it to that), so the engine decodes it with
// encoding/json.

// appendState appends s as encoding/json would marshal it.
func appendState(b []byte, s *State) []byte {
	b = append(b, `{"MonitorPid":`...)
	b = strconv.AppendInt(b, int64(s.MonitorPid), 10)
	b = append(b, `,"Pid":`...)
	b = strconv.AppendInt(b, int64(s.Pid), 10)
	b = append(b, `,"Status":`...)
	b = appendJSONString(b, []byte(s.Status))
	b = append(b, `,"StartedAt":`...)
	b = appendJSONTime(b, s.StartedAt)
	b = append(b, `,"FinishedAt":`...)
	b = appendJSONTime(b, s.FinishedAt)
	b = append(b, `,"ExitCode":`...)
	b = strconv.AppendInt(b, int64(s.ExitCode), 10)
	b = append(b, `,"OOMKilled":`...)
	b = strconv.AppendBool(b, s.OOMKilled)
	b = append(b, `,"Error":`...)
	b = appendJSONString(b, []byte(s.Error))
	b = append(b, `,"RestartCount":`...)
	b = strconv.AppendInt(b, int64(s.RestartCount), 10)
	b = append(b, `,"UserStopped":`...)
	b = strconv.AppendBool(b, s.UserStopped)
	if h := s.Health; h != nil {
		b = append(b, `,"Health":{"Status":`...)
		b = appendJSONString(b, []byte(h.Status))
		b = append(b, `,"FailingStreak":`...)
		b = strconv.AppendInt(b, int64(h.FailingStreak), 10)
		b = append(b, `,"Log":`...)
		if h.Log == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i, r := range h.Log {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"Start":`...)
				b = appendJSONTime(b, r.Start)
				b = append(b, `,"End":`...)
				b = appendJSONTime(b, r.End)
				b = append(b, `,"ExitCode":`...)
				b = strconv.AppendInt(b, int64(r.ExitCode), 10)
				b = append(b, `,"Output":`...)
				b = appendJSONString(b, []byte(r.Output))
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONTime is time.Time's MarshalJSON.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// jsonFields parses one flat JSON object: string, number, boolean and null
// values, and arrays of strings. Keys are matched exactly (the writers are
// ours, the runtime's and encoding/json's, which all use the field names).
// Nested objects are rejected.
type jsonValue struct {
	str   string
	num   float64
	isNum bool
	list  []string
}

var errJSON = errors.New("malformed JSON")

func parseJSONObject(data []byte) (map[string]jsonValue, error) {
	p := &jsonParser{data: data}
	out := make(map[string]jsonValue)
	p.space()
	if !p.eat('{') {
		return nil, errJSON
	}
	p.space()
	if p.eat('}') {
		return out, nil
	}
	for {
		p.space()
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.eat(':') {
			return nil, errJSON
		}
		p.space()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return out, nil
		}
		return nil, errJSON
	}
}

type jsonParser struct {
	data []byte
	i    int
}

func (p *jsonParser) space() {
	for p.i < len(p.data) && (p.data[p.i] == ' ' || p.data[p.i] == '\t' || p.data[p.i] == '\n' || p.data[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) value() (jsonValue, error) {
	if p.i >= len(p.data) {
		return jsonValue{}, errJSON
	}
	switch c := p.data[p.i]; {
	case c == '"':
		s, err := p.str()
		return jsonValue{str: s}, err
	case c == '[':
		p.i++
		var list []string
		p.space()
		if p.eat(']') {
			return jsonValue{list: []string{}}, nil
		}
		for {
			p.space()
			s, err := p.str()
			if err != nil {
				return jsonValue{}, err
			}
			list = append(list, s)
			p.space()
			if p.eat(',') {
				continue
			}
			if p.eat(']') {
				return jsonValue{list: list}, nil
			}
			return jsonValue{}, errJSON
		}
	case c == 't' || c == 'f' || c == 'n':
		for _, w := range []string{"true", "false", "null"} {
			if len(p.data)-p.i >= len(w) && string(p.data[p.i:p.i+len(w)]) == w {
				p.i += len(w)
				return jsonValue{str: w}, nil
			}
		}
		return jsonValue{}, errJSON
	default:
		start := p.i
		for p.i < len(p.data) && (p.data[p.i] == '-' || p.data[p.i] == '+' || p.data[p.i] == '.' ||
			p.data[p.i] == 'e' || p.data[p.i] == 'E' || (p.data[p.i] >= '0' && p.data[p.i] <= '9')) {
			p.i++
		}
		n, err := strconv.ParseFloat(string(p.data[start:p.i]), 64)
		if err != nil {
			return jsonValue{}, errJSON
		}
		return jsonValue{num: n, isNum: true}, nil
	}
}

func (p *jsonParser) str() (string, error) {
	if !p.eat('"') {
		return "", errJSON
	}
	var b []byte
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), nil
		case c == '\\':
			if p.i+1 >= len(p.data) {
				return "", errJSON
			}
			e := p.data[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", errJSON
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.i+1 < len(p.data) && p.data[p.i] == '\\' && p.data[p.i+1] == 'u' {
						p.i += 2
						if r2, ok = p.hex4(); !ok {
							return "", errJSON
						}
					}
					r = utf16.DecodeRune(r, r2)
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", errJSON
			}
		default:
			b = append(b, c)
			p.i++
		}
	}
	return "", errJSON
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.i < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.data[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}
