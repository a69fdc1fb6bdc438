package enqueueapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Limits on one POST body. A body is read as a stream, one refresh at a
// time, so junk is refused as soon as it shows and memory stays bounded by
// the largest single refresh, not by the body.
const (
	// MaxBodyBytes bounds a POST body; a larger one is answered 413.
	MaxBodyBytes = 4 << 20
	// MaxItems bounds the refreshes of one POST; more are answered 413.
	MaxItems = 1000
	// MaxItemBytes bounds one refresh of a body, well above the largest
	// valid one (4 KiB of meta and a few short strings).
	MaxItemBytes = 32 << 10
	// MaxListedErrors bounds the errors listed in one answer; error_count
	// says how many there were in all.
	MaxListedErrors = 20
)

// tooLargeError is a body over MaxBodyBytes or with more than MaxItems
// refreshes; the answer is 413.
type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string { return e.msg }

// readItems reads a body that is one JSON object or an array of them and
// returns each refresh's raw JSON. A *Problem is a 400; a *tooLargeError a
// 413.
func readItems(w http.ResponseWriter, r *http.Request) ([]json.RawMessage, error) {
	br := bufio.NewReader(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	first, err := firstByte(br)
	if err != nil {
		return nil, bodyError(err)
	}
	cr := &countingReader{r: br}
	dec := json.NewDecoder(cr)
	// The decoder reads a whole value before returning it: stop it as soon
	// as one refresh has clearly outgrown MaxItemBytes, rather than after
	// scanning megabytes of one string. What it read ahead for later
	// refreshes is at most a buffer's worth, hence the slack.
	var raws []json.RawMessage
	next := func() error {
		cr.limit = dec.InputOffset() + MaxItemBytes + itemSlack
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bodyError(err)
		}
		if len(raw) > MaxItemBytes {
			return bodyError(errItemTooLarge)
		}
		raws = append(raws, raw)
		return nil
	}
	switch first {
	case '{':
		if err := next(); err != nil {
			return nil, err
		}
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, bodyError(err)
		}
		for dec.More() {
			if len(raws) == MaxItems {
				return nil, &tooLargeError{fmt.Sprintf("body has more than %d refreshes; send at most %d per request", MaxItems, MaxItems)}
			}
			if err := next(); err != nil {
				return nil, err
			}
		}
		cr.limit = 0
		if _, err := dec.Token(); err != nil {
			return nil, bodyError(err)
		}
		if len(raws) == 0 {
			return nil, &Problem{Message: "body is an empty array; send at least one refresh"}
		}
	case 0:
		return nil, &Problem{Message: `body is empty; send a JSON object such as {"provider":"hooked","account_id":"a1"}, or an array of them`}
	default:
		return nil, &Problem{Message: `body must be a JSON object such as {"provider":"hooked","account_id":"a1"}, or an array of them`}
	}
	// Nothing but white space may follow the value.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, bodyError(err)
		}
		return nil, &Problem{Message: "body has more after its JSON value; send one object or one array"}
	}
	return raws, nil
}

// itemSlack is how far past MaxItemBytes the decoder may have read for one
// refresh before it is refused: its read-ahead buffer, which grows to about
// twice the largest value it has held.
const itemSlack = 4 * MaxItemBytes

// errItemTooLarge stops the decoder inside a refresh over MaxItemBytes.
var errItemTooLarge = fmt.Errorf("a refresh is over %d bytes", MaxItemBytes)

// countingReader counts what the decoder reads and fails once it has read
// past limit (0: no limit).
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit > 0 && c.n > c.limit {
		return 0, errItemTooLarge
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// firstByte returns the first byte that is not JSON white space, 0 at EOF,
// without consuming it.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, br.UnreadByte()
	}
}

// bodyError turns a read or decode error into a 413 or a 400.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &tooLargeError{fmt.Sprintf("body is over %d bytes; split the batch", MaxBodyBytes)}
	}
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, errItemTooLarge):
		return &tooLargeError{fmt.Sprintf("a refresh of the body is over %d bytes; a refresh holds at most 4 KiB of meta and a few short strings", MaxItemBytes)}
	case errors.As(err, &syn):
		return &Problem{Message: fmt.Sprintf("body is not valid JSON at byte %d: %v", syn.Offset, syn)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Problem{Message: "body is not valid JSON: it ends before its value does"}
	}
	return &Problem{Message: "cannot read body: " + err.Error()}
}

// checkDuplicates refuses a key given twice in any object of a refresh,
// meta included: encoding/json keeps the last one, so what was validated
// and what a consumer of the result reads could differ.
func checkDuplicates(raw json.RawMessage) *Problem {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return walk(dec, "")
}

// walk reads one value from dec, refusing a key given twice in an object.
func walk(dec *json.Decoder, path string) *Problem {
	tok, err := dec.Token()
	if err != nil {
		return &Problem{Field: path, Message: "is not valid JSON"}
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return &Problem{Field: path, Message: "is not valid JSON"}
			}
			key, _ := kt.(string)
			field := key
			if path != "" {
				field = path + "." + key
			}
			if seen[key] {
				return &Problem{Field: field, Message: "is given twice; give each key once"}
			}
			seen[key] = true
			if p := walk(dec, field); p != nil {
				return p
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if p := walk(dec, path); p != nil {
				return p
			}
		}
		_, err = dec.Token()
	}
	if err != nil {
		return &Problem{Field: path, Message: "is not valid JSON"}
	}
	return nil
}
