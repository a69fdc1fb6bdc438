package smallfile

import (
	"fmt"
	"io"
	"os"
)

// TooLargeError is a file over the bound Read was given.
type TooLargeError struct {
	Path string
	Max  int // bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is over %d bytes", e.Path, e.Max)
}

// Read returns the contents of the file at path if it holds at most max
// bytes, and a *TooLargeError if it holds more; it never reads more than
// max+1. An error opening or reading the file is os's, which names the
// path.
func Read(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, &TooLargeError{Path: path, Max: max}
	}
	return b, nil
}
