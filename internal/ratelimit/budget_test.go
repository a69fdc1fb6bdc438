package ratelimit_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/ratelimit"
)

func TestParseBudget(t *testing.T) {
	tests := []struct {
		in      string
		want    ratelimit.Budget
		wantStr string
		wantErr string
	}{
		{in: "5/1s,20/10s,100/1m", want: ratelimit.Budget{{5, time.Second}, {20, 10 * time.Second}, {100, time.Minute}}, wantStr: "5/1s,20/10s,100/1m"},
		{in: "off", want: ratelimit.Budget{}, wantStr: "off"},
		{in: " OFF ", want: ratelimit.Budget{}, wantStr: "off"},
		{in: "1/1ms", want: ratelimit.Budget{{1, time.Millisecond}}, wantStr: "1/1ms"},
		{in: "100000/24h", want: ratelimit.Budget{{100000, 24 * time.Hour}}, wantStr: "100000/24h"},
		{in: " 5 / 1s , 7/1m30s", want: ratelimit.Budget{{5, time.Second}, {7, 90 * time.Second}}, wantStr: "5/1s,7/90s"},
		{in: "3/1500ms", want: ratelimit.Budget{{3, 1500 * time.Millisecond}}, wantStr: "3/1500ms"},
		{in: "", wantErr: "empty budget"},
		{in: "5/0s", wantErr: `"5/0s": window must be longer than 0`},
		{in: "5/-1s", wantErr: `"5/-1s": window must be longer than 0`},
		{in: "0/1s", wantErr: `"0/1s": count must be a whole number >= 1`},
		{in: "x/1s", wantErr: `"x/1s": count must be a whole number >= 1`},
		{in: "5", wantErr: `"5": want N/DURATION`},
		{in: "5/1s,", wantErr: `"": want N/DURATION`},
		{in: "5/soon", wantErr: `"5/soon": window "soon" is not a duration`},
		{in: "5/1s,10/1m,3/1s", wantErr: `"3/1s": a window of 1s is already given`},
		{in: "5/1500us", wantErr: `"5/1500us": window must be a whole number of milliseconds`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ratelimit.ParseBudget(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBudget(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBudget(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseBudget(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.wantStr {
				t.Fatalf("String() = %q, want %q", s, tt.wantStr)
			}
			again, err := ratelimit.ParseBudget(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip of %q = %#v, %v", got.String(), again, err)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	const apiKey = "sk_live_0123456789abcdef"
	id := ratelimit.KeyID(apiKey)
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("KeyID = %q, want 16 lowercase hex digits", id)
	}
	if id != ratelimit.KeyID(apiKey) || id == ratelimit.KeyID(apiKey+"x") {
		t.Fatal("KeyID must be stable and differ between keys")
	}
	if strings.Contains(apiKey, id) {
		t.Fatal("KeyID leaks the key")
	}
}

func TestQuotaPause(t *testing.T) {
	tests := []struct {
		name                               string
		limit, used, remaining, windowSecs int
		want                               time.Duration
		contradicts                        bool // a *QuotaError, no pause
	}{
		{"spent", 100, 100, 0, 60, time.Minute, false},
		{"over-spent", 100, 120, 0, 60, time.Minute, false},
		{"quarter left spreads", 100, 75, 25, 60, time.Minute / 26, false},
		{"one left", 5, 4, 1, 1, time.Second / 2, false},
		{"plenty", 100, 10, 90, 60, 0, false},
		{"a month's window", 100, 100, 0, 2592000, 30 * 24 * time.Hour, false},
		{"a window past any Duration", 1, 1, 0, math.MaxInt, 100 * 365 * 24 * time.Hour, false},
		{"used says spent, remaining says not", 100, 100, 90, 60, 0, true},
		{"used says spent, one remains", 100, 100, 3, 60, 0, true},
		{"remaining above limit", 100, 0, 500, 60, 0, true},
		{"negative remaining", 100, 10, -1, 60, 0, true},
		{"negative used", 100, -5, 0, 60, 0, true},
		{"no window", 100, 100, 0, 0, 0, true},
		{"no limit", 0, 0, 0, 60, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ratelimit.Quota{tt.limit, tt.used, tt.remaining, tt.windowSecs}.Pause()
			var qe *ratelimit.QuotaError
			if errors.As(err, &qe) != tt.contradicts {
				t.Fatalf("Pause error = %v, want a *QuotaError: %v", err, tt.contradicts)
			}
			if got != tt.want {
				t.Fatalf("Pause = %v, want %v", got, tt.want)
			}
		})
	}
}
