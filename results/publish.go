package results

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultIndexTTL is how long a task's index record (latest entry id,
// published run) is kept after its last result. Lookups by task id and the
// exactly-once check both depend on it.
const DefaultIndexTTL = 7 * 24 * time.Hour

// IndexKey is the hash that records, per task, the latest entry id, the run
// it was published for and its status. It sits beside the stream's key so a
// test or a second deployment with its own stream has its own index.
func IndexKey(stream, taskID string) string { return stream + ":task:" + taskID }

// Index fields.
const (
	indexRun    = "run"
	indexEntry  = "entry"
	indexStatus = "status"
)

// publishScript adds the entry unless this run of the task already has one.
// Doing the check, the XADD and the mark in one script is what makes the
// result exactly once: a crash can fall before the script (nothing
// published, the re-run publishes) or after it (published and marked, the
// re-run finds the mark), never between.
//
// KEYS[1] stream, KEYS[2] index hash, KEYS[3..] keys to delete once added
// ARGV[1] run, ARGV[2] index ttl (ms), ARGV[3] status, ARGV[4..] fields
// Returns {1, id} when added, {0, id} when this run was already published.
var publishScript = redis.NewScript(`
local published = tonumber(redis.call('HGET', KEYS[2], 'run') or '0')
if published >= tonumber(ARGV[1]) then
  return {0, redis.call('HGET', KEYS[2], 'entry') or ''}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('HSET', KEYS[2], 'run', ARGV[1], 'entry', id, 'status', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if #KEYS > 2 then redis.call('DEL', unpack(KEYS, 3)) end
return {1, id}
`)

// Publisher adds results to the stream, once per task run.
type Publisher struct {
	rdb      redis.UniversalClient
	stream   string
	indexTTL time.Duration
}

// NewPublisher returns a Publisher for stream. indexTTL ≤ 0 means
// DefaultIndexTTL.
func NewPublisher(rdb redis.UniversalClient, stream string, indexTTL time.Duration) *Publisher {
	if indexTTL <= 0 {
		indexTTL = DefaultIndexTTL
	}
	return &Publisher{rdb: rdb, stream: stream, indexTTL: indexTTL}
}

// Publish adds e as the result of run (1 for a task's first life; an
// operator's re-run of an archived task is the next). It returns the entry's
// id, and added=false when that run already had its entry: then nothing was
// written and id is the earlier entry's. The done keys, state the caller no
// longer needs once the result is out, are deleted in the same script, and
// only when the entry is added.
func (p *Publisher) Publish(ctx context.Context, e Entry, run int, done ...string) (id string, added bool, err error) {
	if run < 1 {
		return "", false, fmt.Errorf("publish result of task %s: run %d, want ≥ 1", e.TaskID, run)
	}
	res, err := publishScript.Run(ctx, p.rdb, p.publishKeys(e, done), p.publishArgs(e, run)...).Slice()
	if err != nil {
		return "", false, fmt.Errorf("publish result of task %s: %w", e.TaskID, err)
	}
	return publishReply(e.TaskID, res)
}

// publishKeys are publishScript's KEYS for e.
func (p *Publisher) publishKeys(e Entry, done []string) []string {
	keys := make([]string, 0, 2+len(done))
	return append(append(keys, p.stream, IndexKey(p.stream, e.TaskID)), done...)
}

// publishArgs are publishScript's ARGV for e.
func (p *Publisher) publishArgs(e Entry, run int) []any {
	fields := e.Values()
	args := make([]any, 0, 3+len(fields))
	args = append(args, run, p.indexTTL.Milliseconds(), string(e.Status))
	for _, f := range fields {
		args = append(args, f)
	}
	return args
}

func publishReply(taskID string, res []any) (id string, added bool, err error) {
	if len(res) != 2 {
		return "", false, fmt.Errorf("publish result of task %s: unexpected reply %v", taskID, res)
	}
	added = res[0] == int64(1)
	id, _ = res[1].(string)
	return id, added, nil
}

// Published says whether a task has a result and for which run: run is 0
// when it has none (or its index record expired).
func (p *Publisher) Published(ctx context.Context, taskID string) (run int, status Status, err error) {
	vals, err := p.rdb.HMGet(ctx, IndexKey(p.stream, taskID), indexRun, indexStatus).Result()
	if err != nil {
		return 0, "", fmt.Errorf("read result index of task %s: %w", taskID, err)
	}
	run, status = parsePublished(vals)
	return run, status, nil
}

func parsePublished(vals []any) (run int, status Status) {
	if s, ok := vals[0].(string); ok {
		run, _ = strconv.Atoi(s)
	}
	if s, ok := vals[1].(string); ok {
		status = Status(s)
	}
	return run, status
}
