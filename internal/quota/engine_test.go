package quota

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/fakeclock"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	e     *Engine
	rdb   redis.UniversalClient
	lim   *ratelimit.Limiter
	clock *fakeclock.Clock
	key   ratelimit.Key
}

// setup returns an Engine on keys of the test's own, its limiter on a
// clock the test moves and no margin, so windows are exact seconds.
func setup(t *testing.T, reserve float64, inline time.Duration) *fixture {
	t.Helper()
	rdb, _ := redistest.Client(t)
	name := redistest.Name(t, "quota")
	c := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	lim := ratelimit.New(rdb, ratelimit.Options{Prefix: name + ":rl:", Margin: -1, Now: c.Now})
	e, err := New(Options{Limiter: lim, Ledger: ledger.New(rdb, name+":task:", time.Hour), Stream: name + ":results",
		Lanes: []string{"critical", "default", "low"}, Reserve: reserve, LineWait: inline})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), name+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return &fixture{e: e, rdb: rdb, lim: lim, clock: c, key: ratelimit.Key{Provider: "p", KeyID: "k"}}
}

func (f *fixture) admit(t *testing.T, id, queue, tenant string, b ratelimit.Budget) Admission {
	t.Helper()
	a, err := f.ask(context.Background(), Ticket{TaskID: id, Queue: queue, Tenant: tenant, Now: time.Now(),
		TaskDeadline: time.Hour, Request: &Request{Key: f.key, Budget: b}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ask sends the ticket's admission in a round trip of its own, as the
// handler does when no other task shares it.
func (f *fixture) ask(ctx context.Context, t Ticket) (Admission, error) {
	var got func() (Admission, error)
	if err := (redisbatch.Direct{RDB: f.rdb}).Do(ctx, func(pipe redis.Pipeliner) { got = f.e.AdmitPipelined(ctx, pipe, t) }); err != nil {
		return Admission{}, err
	}
	return got()
}

func budget(t *testing.T, s string) ratelimit.Budget {
	t.Helper()
	b, err := ratelimit.ParseBudget(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// One call tells each case apart: a new task, one already published, one
// past its deadline, one held back by each guard, one admitted and
// counted.
func TestAdmitVerdicts(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		before      func(t *testing.T, f *fixture)
		request     bool
		budget      string
		dailyCap    int
		deadline    time.Duration
		want        Verdict
		wantGuard   Guard
		wantWait    time.Duration
		wantAttempt int
	}{
		{name: "begin only", want: Begun},
		{name: "admitted", request: true, budget: "off", want: Admitted, wantAttempt: 1},
		{name: "admitted under a budget", request: true, budget: "2/1s", want: Admitted, wantAttempt: 1},
		{name: "published", request: true, want: Published, before: func(t *testing.T, f *fixture) {
			f.rdb.HSet(ctx, results.IndexKey(f.e.opt.Stream, "t1"), "run", 1, "status", "succeeded")
		}},
		{name: "expired", request: true, deadline: time.Nanosecond, want: Expired},
		{name: "cooldown", request: true, want: Refused, wantGuard: GuardCooldown, wantWait: 3 * time.Second, before: func(t *testing.T, f *fixture) {
			var cd func() (time.Duration, error)
			_ = redisbatch.Direct{RDB: f.rdb}.Do(ctx, func(pipe redis.Pipeliner) { cd = f.lim.CooldownPipelined(ctx, pipe, f.key, 3*time.Second) })
			if _, err := cd(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "breaker", request: true, want: Refused, wantGuard: GuardBreaker, wantWait: ratelimit.DefaultBreakerOpenFor, before: func(t *testing.T, f *fixture) {
			for range ratelimit.DefaultBreakerThreshold {
				_ = f.lim.Report(ctx, f.key, false, false)
			}
		}},
		{name: "daily cap", request: true, dailyCap: 1, want: Refused, wantGuard: GuardDailyCap, wantWait: 12 * time.Hour, before: func(t *testing.T, f *fixture) {
			earlier := Ticket{TaskID: "t0", Queue: "default", Now: time.Now(), TaskDeadline: time.Hour, Request: &Request{Key: f.key, DailyCap: 1}}
			if a, err := f.ask(ctx, earlier); err != nil || a.Verdict != Admitted {
				t.Fatal(a, err)
			}
		}},
		{name: "budget", request: true, budget: "1/1s", want: Refused, wantGuard: GuardBudget, wantWait: 600 * time.Millisecond, before: func(t *testing.T, f *fixture) {
			if a := f.admit(t, "t0", "default", "", budget(t, "1/1s")); a.Verdict != Admitted {
				t.Fatal(a)
			}
			f.clock.Advance(400 * time.Millisecond)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, DefaultReserve, time.Second)
			if tc.before != nil {
				tc.before(t, f)
			}
			tk := Ticket{TaskID: "t1", Queue: "default", Now: time.Now(), TaskDeadline: time.Hour}
			if tc.deadline != 0 {
				tk.TaskDeadline = tc.deadline
			}
			if tc.request {
				tk.Request = &Request{Key: f.key, Budget: budget(t, cmpOr(tc.budget, "off")), DailyCap: tc.dailyCap}
			}
			a, err := f.ask(ctx, tk)
			if err != nil {
				t.Fatal(err)
			}
			if a.Verdict != tc.want || a.Guard != tc.wantGuard || a.Wait != tc.wantWait {
				t.Fatalf("admission %+v, want %s %q %v", a, tc.want, tc.wantGuard, tc.wantWait)
			}
			if a.State.Run != 1 || a.State.FirstSeen.IsZero() || a.State.Attempts != tc.wantAttempt {
				t.Fatalf("state %+v, want run 1 with %d attempts", a.State, tc.wantAttempt)
			}
			// What the ledger holds agrees with what the call said.
			st, err := f.e.opt.Ledger.Begin(ctx, "t1", time.Now())
			if err != nil || st.Attempts != tc.wantAttempt {
				t.Fatalf("ledger %+v (%v), want %d attempts", st, err, tc.wantAttempt)
			}
			if tc.request && tc.want == Admitted {
				again, err := f.ask(ctx, tk)
				if err != nil || again.State.Attempts != 2 {
					t.Fatalf("second admission %+v (%v), want 2 attempts", again, err)
				}
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// waiter is a task standing at the admission point of one key.
type waiter struct{ id, queue, tenant string }

// grants runs the line for n slots of a 1/1s budget: at each slot every
// waiter still waiting asks, in the order given (lowest lane first, so
// that asking first never helps), and exactly one is admitted. It returns
// the admitted ids in order.
func (f *fixture) grants(t *testing.T, ws []waiter, n int) []string {
	t.Helper()
	b := budget(t, "1/1s")
	var got []string
	left := slices.Clone(ws)
	for range n {
		f.clock.Advance(time.Second)
		admitted := -1
		for i, w := range left {
			a := f.admit(t, w.id, w.queue, w.tenant, b)
			switch a.Verdict {
			case Admitted:
				if admitted >= 0 {
					t.Fatalf("%s and %s both admitted in one slot of 1/1s", left[admitted].id, w.id)
				}
				admitted = i
			case Refused:
				if a.Guard != GuardBudget && a.Guard != GuardPriority {
					t.Fatalf("%s refused for %s", w.id, a.Guard)
				}
			default:
				t.Fatalf("%s: %+v", w.id, a)
			}
		}
		if admitted < 0 {
			t.Fatalf("slot %d: nobody admitted (%v waiting)", len(got)+1, left)
		}
		got = append(got, left[admitted].id)
		left = slices.Delete(left, admitted, admitted+1)
	}
	return got
}

// A saturated key's next slot goes to the highest lane waiting, whoever
// asks first, and within a lane to the task that came first.
func TestPriorityLanes(t *testing.T) {
	f := setup(t, 0, time.Hour)
	b := budget(t, "1/1s")
	if a := f.admit(t, "l0", "low", "", b); a.Verdict != Admitted {
		t.Fatalf("first task: %+v", a)
	}
	var ws []waiter
	for i := range 3 {
		ws = append(ws, waiter{fmt.Sprintf("l%d", i+1), "low", ""})
	}
	for i := range 2 {
		ws = append(ws, waiter{fmt.Sprintf("d%d", i+1), "default", ""})
	}
	ws = append(ws, waiter{"c1", "critical", ""})
	// Everyone joins the line before the slot frees, lowest first.
	for _, w := range ws {
		if a := f.admit(t, w.id, w.queue, w.tenant, b); a.Verdict != Refused {
			t.Fatalf("%s: %+v", w.id, a)
		}
	}
	// A task of a lower lane is told it waits for a higher one.
	if a := f.admit(t, "l1", "low", "", b); a.Guard != GuardPriority {
		t.Fatalf("l1 refused for %q, want %q", a.Guard, GuardPriority)
	}
	got := f.grants(t, ws, len(ws))
	want := []string{"c1", "d1", "d2", "l1", "l2", "l3"}
	if !slices.Equal(got, want) {
		t.Fatalf("grant order %v, want %v", got, want)
	}
}

// Under a higher lane that never empties, a lower lane still gets its
// share (LANE_RESERVE) while it has a task waiting; with no reserve it
// waits until the higher lane is done.
func TestReserveKeepsLowerLanesMoving(t *testing.T) {
	for _, tc := range []struct {
		reserve float64
		within  int // the low task's grant comes within this many
	}{
		{reserve: 0.10, within: 11},
		{reserve: 0.25, within: 5},
		{reserve: 0, within: 31},
	} {
		t.Run(fmt.Sprint(tc.reserve), func(t *testing.T) {
			f := setup(t, tc.reserve, time.Hour)
			b := budget(t, "1/1s")
			f.admit(t, "first", "critical", "", b)
			var ws []waiter
			for i := range 30 {
				ws = append(ws, waiter{fmt.Sprintf("c%02d", i), "critical", ""})
			}
			ws = append([]waiter{{"low", "low", ""}}, ws...)
			for _, w := range ws {
				f.admit(t, w.id, w.queue, w.tenant, b)
			}
			got := f.grants(t, ws, len(ws))
			at := slices.Index(got, "low") + 1
			if at > tc.within || (tc.reserve == 0 && at != 31) {
				t.Fatalf("low granted %dth of %v, want within %d", at, got, tc.within)
			}
			// The critical tasks still go in their order.
			crit := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s == "low" })
			if !slices.IsSorted(crit) {
				t.Fatalf("critical grants out of order: %v", crit)
			}
		})
	}
}

// Tenants of one queue and key take turns: a tenant that comes with a
// backlog after another does not wait behind it.
func TestTenantsRoundRobin(t *testing.T) {
	f := setup(t, 0, time.Hour)
	b := budget(t, "1/1s")
	f.admit(t, "a0", "default", "acme", b)
	var ws []waiter
	for i := range 6 {
		ws = append(ws, waiter{fmt.Sprintf("a%d", i+1), "default", "acme"})
	}
	for i := range 3 {
		ws = append(ws, waiter{fmt.Sprintf("b%d", i+1), "default", "globex"})
	}
	ws = append(ws, waiter{"u1", "default", ""}) // no tenant: one more tenant
	for _, w := range ws {
		f.admit(t, w.id, w.queue, w.tenant, b)
	}
	got := f.grants(t, ws, len(ws))
	// Turns of (acme, globex, untagged), each tenant in its own order.
	turns := [][]string{{"a1", "b1", "u1"}, {"a2", "b2"}, {"a3", "b3"}, {"a4"}, {"a5"}, {"a6"}}
	i := 0
	for _, turn := range turns {
		if !sameSet(got[i:i+len(turn)], turn) {
			t.Fatalf("grant order %v, want turns %v", got, turns)
		}
		i += len(turn)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A task that joined the line and never came back (its worker died)
// holds the slot it was due only until its lease ends.
func TestLineEntryOfDeadWorkerExpires(t *testing.T) {
	f := setup(t, 0, time.Hour)
	b := budget(t, "1/1s")
	f.admit(t, "first", "default", "", b)
	dead := f.admit(t, "dead", "critical", "", b)
	if dead.Verdict != Refused {
		t.Fatalf("dead: %+v", dead)
	}
	if a := f.admit(t, "alive", "low", "", b); a.Verdict != Refused || a.Guard != GuardPriority {
		t.Fatalf("alive: %+v", a)
	}
	f.clock.Advance(time.Second)
	if a := f.admit(t, "alive", "low", "", b); a.Verdict != Refused {
		t.Fatalf("alive got the slot due to the dead task: %+v", a)
	}
	f.clock.Advance(leaseSlack)
	if a := f.admit(t, "alive", "low", "", b); a.Verdict != Admitted {
		t.Fatalf("alive after the dead task's lease: %+v", a)
	}
}

// A wait too long to sleep in the worker leaves no entry in the line: the
// task is handed back, and the line does not hold a slot for it.
func TestLongWaitLeavesTheLine(t *testing.T) {
	f := setup(t, 0, 500*time.Millisecond)
	b := budget(t, "1/1s")
	f.admit(t, "first", "default", "", b)
	a := f.admit(t, "late", "critical", "", b)
	if a.Verdict != Refused || a.Wait != time.Second {
		t.Fatalf("late: %+v", a)
	}
	f.clock.Advance(time.Second)
	if a := f.admit(t, "other", "low", "", b); a.Verdict != Admitted {
		t.Fatalf("other: %+v, want admitted: the handed-back task holds no place", a)
	}
}
