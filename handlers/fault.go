package handlers

// Crash points for the fault-injection build: REFRESHQ_FAULT names one
// in a worker built with -tags faultinject. They bracket the result's
// publish, where a crash could lose the result or write it twice.
const (
	faultBeforePublish = "crash-before-publish"
	faultAfterPublish  = "crash-after-publish"
)
