package results

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Bounds of Recent, so a status page's refresh costs the same whatever the
// entries hold.
const (
	// MaxRecent is the most entries Recent returns.
	MaxRecent = 200
	// recentErrorBytes is how much of an entry's error Recent keeps.
	recentErrorBytes = 300
)

// Recent returns the newest count entries (at most MaxRecent), newest
// first, without their result and meta and with error cut to a few hundred
// bytes: one round trip that sends back little however large the upstream
// bodies were.
func (r *Reader) Recent(ctx context.Context, count int) ([]Entry, error) {
	count = min(max(count, 1), MaxRecent)
	res, err := recentScript.Run(ctx, r.rdb, []string{r.stream}, count, recentErrorBytes).Slice()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read recent results: %w", err)
	}
	out := make([]Entry, 0, len(res))
	for _, item := range res {
		kv, ok := item.([]any)
		if !ok || len(kv) == 0 {
			continue
		}
		id, _ := kv[0].(string)
		values := make(map[string]any, len(kv)/2)
		for i := 1; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			v, _ := kv[i+1].(string)
			values[k] = strings.ToValidUTF8(v, "…") // the cut may split a character
		}
		e := FromValues(id, values)
		out = append(out, e)
	}
	return out, nil
}

// recentScript reads the newest entries without their bodies.
//
// KEYS: 1 stream. ARGV: 1 count, 2 bytes of error kept.
// Returns one {id, field, value, ...} list per entry, newest first.
var recentScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local maxErr = tonumber(ARGV[2])
local msgs = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', n)
local out = {}
for _, m in ipairs(msgs) do
  local f = {m[1]}
  local kv = m[2]
  for i = 1, #kv, 2 do
    local k, v = kv[i], kv[i + 1]
    if k ~= '` + FieldResult + `' and k ~= '` + FieldMeta + `' then
      if k == '` + FieldError + `' and #v > maxErr then v = string.sub(v, 1, maxErr) .. '…' end
      f[#f + 1] = k
      f[#f + 1] = v
    end
  end
  out[#out + 1] = f
end
return out
`)
