package watch

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
)

// A log is lines of "<crc32 of the JSON, 8 hex digits> <JSON>\n": first a
// logHeader naming the full state it extends, then one logRecord per save.
type logHeader struct {
	Base string `json:"base"` // baseID of the full state's file
}

type logRecord struct {
	ResourceVersion string      `json:"rv"`
	Upserted        []ObjectRef `json:"up"`
	Deleted         []ObjectRef `json:"del"` // Namespace and Name only, per Changes
}

func newLogRecord(c *Changes) logRecord {
	r := logRecord{ResourceVersion: c.ResourceVersion, Upserted: c.Upserted, Deleted: c.Deleted}
	if r.Upserted == nil {
		r.Upserted = []ObjectRef{}
	}
	if r.Deleted == nil {
		r.Deleted = []ObjectRef{}
	}
	return r
}

// applyLog applies the records of log to s if the log belongs to the file
// with baseID base. It returns how many leading bytes of log are whole
// lines of that file's log, the length to append after; 0 when the log
// cannot be appended to (it is torn, or belongs to another file). Errors
// match ErrBadCheckpoint.
func applyLog(s *State, base string, log []byte) (int, error) {
	// Only the last line can be cut short or left unwritten by a crash
	// (every line is fsync'd before the next is written): a bad last line
	// is a save that did not happen, a bad line before it is corruption.
	lines := bytes.SplitAfter(log, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return 0, nil // a new log, torn: the full state alone
	}
	var h logHeader
	if err := decodeLine(lines[0], &h); err != nil {
		if len(lines) == 1 {
			return 0, nil
		}
		return 0, fmt.Errorf("%w: line 1: %w", ErrBadCheckpoint, err)
	}
	if h.Base != base {
		return 0, nil // the log of an older full state, replaced since
	}
	whole := len(lines[0])
	records := make([]logRecord, 0, len(lines)-1)
	for i, line := range lines[1:] {
		var r logRecord
		if err := decodeLine(line, &r); err != nil {
			if i == len(lines)-2 {
				break // the last save did not finish: the state before it
			}
			return 0, fmt.Errorf("%w: line %d: %w", ErrBadCheckpoint, i+2, err)
		}
		if r.ResourceVersion == "" {
			return 0, fmt.Errorf("%w: line %d: no resourceVersion", ErrBadCheckpoint, i+2)
		}
		for _, o := range r.Upserted {
			if o.Name == "" || o.ResourceVersion == "" {
				return 0, fmt.Errorf("%w: line %d: an object has no name or resourceVersion", ErrBadCheckpoint, i+2)
			}
		}
		records = append(records, r)
		whole += len(line)
	}
	applyChanges(s, records)
	if whole < len(log) || log[whole-1] != '\n' {
		return 0, nil // a torn last line, or one without its newline: write a new log
	}
	return whole, nil
}

// applyChanges applies records to s in order, in place: the objects keep
// the full state's order and new ones follow in the order they were saved.
func applyChanges(s *State, records []logRecord) {
	pos := make(map[objKey]int, len(s.Objects))
	for i, o := range s.Objects {
		pos[key(o.Namespace, o.Name)] = i
	}
	deleted := false
	for _, r := range records {
		for _, o := range r.Upserted {
			k := key(o.Namespace, o.Name)
			if i, ok := pos[k]; ok {
				s.Objects[i] = o
			} else {
				pos[k] = len(s.Objects)
				s.Objects = append(s.Objects, o)
			}
		}
		for _, o := range r.Deleted {
			k := key(o.Namespace, o.Name)
			if i, ok := pos[k]; ok {
				s.Objects[i].Name = "" // every saved object has a name: this marks it gone
				delete(pos, k)
				deleted = true
			}
		}
		s.ResourceVersion = r.ResourceVersion
	}
	if deleted {
		s.Objects = slices.DeleteFunc(s.Objects, func(o ObjectRef) bool { return o.Name == "" })
	}
}

// decodeLine checks and decodes one log line (its newline, if any, included).
func decodeLine(line []byte, v any) error {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) < 10 || line[8] != ' ' {
		return errors.New("not a checkpoint log line")
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil {
		return errors.New("not a checkpoint log line")
	}
	body := line[9:]
	if crc32.ChecksumIEEE(body) != uint32(want) {
		return errors.New("checksum mismatch")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// lineHead is the length of a log line's checksum and the space after it.
const lineHead = 9

// logLine returns body as a log line.
func logLine(body []byte) []byte {
	return finishLine(append(make([]byte, lineHead, lineHead+len(body)+1), body...))
}

// finishLine makes line, lineHead bytes of room followed by the JSON, a
// log line: it writes the checksum into the room and appends the newline.
func finishLine(line []byte) []byte {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(line[lineHead:]))
	hex.Encode(line[:8], sum[:]) // 8 lowercase hex digits
	line[8] = ' '
	return append(line, '\n')
}
