package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Parse decodes and validates a task's payload as the worker receives it.
// It is lenient where asynq producers need it to be: keys other than the
// payload's own are ignored, so a producer may add its own. Keys match
// exactly: a duplicate key, or a case variant of a payload key, is a
// *ValidationError, as are wrong types, missing fields and a payload over
// MaxPayloadBytes. An unknown type is an *UnknownTypeError.
//
// The returned Refresh carries what could be read even with an error, for
// the result entry; its Meta is set only when meta itself is valid, and
// the error then says why it is not.
func Parse(taskType string, payload []byte) (Refresh, error) {
	p := providerByType(taskType)
	if p == nil {
		return Refresh{}, &UnknownTypeError{Type: taskType}
	}
	r := Refresh{Provider: p.id}
	if len(payload) > MaxPayloadBytes {
		return r, &ValidationError{Problem: fmt.Sprintf("payload is %d bytes; at most %d are allowed", len(payload), MaxPayloadBytes)}
	}
	err := decodeObject(payload, &r, false, nil)
	if err == nil {
		err = r.Validate()
	}
	if merr := checkMeta(r.Meta); merr != nil {
		// A foreign producer's meta is not copied into results unchecked.
		r.Meta = nil
		dropped := &ValidationError{Field: "meta", Problem: merr.(*ValidationError).Problem + ", so it is not copied to the result"}
		var ve *ValidationError
		if err == nil || errors.As(err, &ve) && ve.Field == "meta" {
			err = dropped
		} else {
			err = fmt.Errorf("%w; and %v", err, dropped)
		}
	}
	return r, err
}

// Decode reads one refresh as producers write it: a line of an `enqueue
// file`, an object of the HTTP API, a schedule entry. Keys match exactly,
// once each; a key outside InputFields and extra is an error. extra maps
// the caller's own keys to what json.Unmarshal decodes them into (the HTTP
// API's "unique", for one). Errors are *ValidationError naming the key.
//
// Decode does not validate the refresh: a producer first fills in its
// defaults (queue, meta), then calls Validate.
func Decode(data []byte, extra map[string]any) (Refresh, error) {
	var r Refresh
	err := decodeObject(data, &r, true, extra)
	return r, err
}

// UnmarshalJSON is Decode without extra keys, so json.Unmarshal of a
// Refresh is as strict as a file line.
func (r *Refresh) UnmarshalJSON(data []byte) error {
	d, err := Decode(data, nil)
	if err != nil {
		return err
	}
	*r = d
	return nil
}

// example is what messages show a producer.
const example = `{"provider":"hooked","account_id":"a1"}`

// decodeObject reads a JSON object key by key, so that a duplicate key is
// seen (encoding/json keeps the last) and keys match exactly (encoding/json
// folds case). strict refuses keys that are neither fields of the mode nor
// extra; otherwise they are skipped. Decoding goes on past a field's
// wrong value, so the fields after it are still read; the first error is
// returned.
func decodeObject(data []byte, r *Refresh, strict bool, extra map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		if err != nil && !errors.Is(err, io.EOF) {
			return &ValidationError{Problem: fmt.Sprintf("is not valid JSON (%v); write one JSON object, e.g. %s", err, example)}
		}
		return &ValidationError{Problem: "must be a JSON object, e.g. " + example}
	}
	seen := map[string]bool{}
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &ValidationError{Problem: fmt.Sprintf("is not valid JSON (%v); write one JSON object, e.g. %s", err, example)}
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &ValidationError{Problem: fmt.Sprintf("is not valid JSON (%v); write one JSON object, e.g. %s", err, example)}
		}
		if seen[key] {
			keep(&ValidationError{Field: key, Problem: "is given twice; give each key once"})
			continue
		}
		seen[key] = true
		if target, ok := extra[key]; ok {
			if err := json.Unmarshal(raw, target); err != nil {
				keep(&ValidationError{Field: key, Problem: "has the wrong type: " + jsonKind(raw)})
			}
			continue
		}
		f := fieldByKey(key)
		if f == nil || (strict && !f.input) || (!strict && !f.payload) {
			if like := caseVariant(key, strict, extra); like != "" {
				keep(&ValidationError{Field: key, Problem: fmt.Sprintf("is not a known field; keys are case-sensitive: write %q", like)})
			} else if strict {
				keep(&ValidationError{Field: key, Problem: "is not a known field; an object may have " + strings.Join(knownKeys(extra), ", ")})
			}
			continue
		}
		if string(raw) == "null" {
			continue // the same as leaving the key out
		}
		if err := f.decode(r, raw); err != nil {
			keep(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return &ValidationError{Problem: fmt.Sprintf("is not valid JSON (%v); write one JSON object, e.g. %s", err, example)}
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return &ValidationError{Problem: "has more after its JSON object; write one object, e.g. " + example}
	}
	return first
}

// knownKeys are the keys a strict decode accepts, for messages.
func knownKeys(extra map[string]any) []string {
	keys := InputFields()
	more := make([]string, 0, len(extra))
	for k := range extra {
		more = append(more, k)
	}
	sort.Strings(more)
	return append(keys, more...)
}

// caseVariant returns the known key that key differs from only by case.
func caseVariant(key string, strict bool, extra map[string]any) string {
	for _, f := range fields {
		if (strict && f.input || !strict && f.payload) && strings.EqualFold(f.key, key) {
			return f.key
		}
	}
	for k := range extra {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return ""
}
