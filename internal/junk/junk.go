package junk

import (
	"bytes"
	"crypto/rand"
	"strings"
)

// Size is the length of every body Bodies returns.
const Size = 10 << 20

// Body is one junk request body and a name for the test's log.
type Body struct {
	Name string
	Data []byte
}

// Fill returns head, unit repeated, then tail: Size bytes, or a little
// more when unit does not divide the room left.
func Fill(head, unit, tail string) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	for b.Len() < Size-len(tail) {
		b.WriteString(unit)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// Bodies returns the junk bodies, none of which a reader may accept.
func Bodies() []Body {
	random := make([]byte, Size)
	_, _ = rand.Read(random)
	return []Body{
		{"random bytes", random},
		{"array of numbers", Fill("[", "1,", "1]")},
		{"one huge string", Fill(`{"provider":"`, "a", `"}`)},
		{"huge meta", Fill(`{"provider":"hooked","account_id":"a","meta":{`, `"k":1,`, `"z":1}}`)},
		{"deep nesting", Fill("", "[", "")},
		{"deep nesting in meta", Fill(`{"provider":"hooked","account_id":"a","meta":`, `{"a":`, "")},
		{"many keys", Fill(`{`, `"provider":"hooked",`, `"x":1}`)},
		{"fat refreshes past the body cap", Fill("[", `{"provider":"hooked","account_id":"a","meta":{"pad":"`+strings.Repeat("x", 4000)+`"}},`, "{}]")},
	}
}
