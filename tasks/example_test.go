package tasks_test

import (
	"encoding/json"
	"fmt"

	"github.com/refreshq/refreshq/tasks"
)

func ExampleRefresh_Validate() {
	r := tasks.BundleSocial("team-42", "tiktok")
	fmt.Println(r.Validate())
	// Output:
	// platform "tiktok" is not a known platform; use one of TIKTOK, YOUTUBE, INSTAGRAM, FACEBOOK, TWITTER, THREADS, LINKEDIN, PINTEREST, REDDIT, MASTODON, DISCORD, SLACK, BLUESKY, GOOGLE_BUSINESS
}

func ExampleRefresh() {
	// A Refresh's JSON is a line of an `enqueue file` JSON Lines file.
	var r tasks.Refresh
	_ = json.Unmarshal([]byte(`{"provider":"hooked","account_id":"a1","queue":"low"}`), &r)
	fmt.Println(r.Provider, r.Subject(), r.Queue, r.Validate())
	b, _ := json.Marshal(tasks.BundleSocial("t1", "TIKTOK"))
	fmt.Println(string(b))
	// Output:
	// hooked a1 low <nil>
	// {"provider":"bundle_social","team_id":"t1","platform":"TIKTOK"}
}

func ExampleDecode() {
	// Keys match exactly, and a caller may accept keys of its own.
	var unique string
	_, err := tasks.Decode([]byte(`{"provider":"hooked","Account_ID":"a1"}`), nil)
	fmt.Println(err)
	r, err := tasks.Decode([]byte(`{"provider":"hooked","account_id":"a1","unique":"1h"}`), map[string]any{"unique": &unique})
	fmt.Println(r.Subject(), unique, err)
	// Output:
	// "Account_ID" is not a known field; keys are case-sensitive: write "account_id"
	// a1 1h <nil>
}
