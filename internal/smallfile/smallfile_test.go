package smallfile_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/smallfile"
	"github.com/refreshq/refreshq/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRead(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr func(error) bool
	}{
		{"under the bound", testenv.WriteFile(t, "small", "abc"), "abc", nil},
		{"exactly the bound", testenv.WriteFile(t, "full", "0123456789"), "0123456789", nil},
		{"over the bound", testenv.WriteFile(t, "big", "0123456789x"), "", func(err error) bool {
			var big *smallfile.TooLargeError
			return errors.As(err, &big) && big.Max == 10 && strings.Contains(err.Error(), "big")
		}},
		{"missing", filepath.Join(dir, "nope"), "", func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
		{"a directory", dir, "", func(err error) bool { return err != nil && strings.Contains(err.Error(), dir) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := smallfile.Read(tt.path, 10)
			if tt.wantErr != nil {
				if !tt.wantErr(err) || got != nil {
					t.Errorf("Read = %q, %v; want no content and the error the case names", got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("Read = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
