package results

// FeedStep is how often the feed behind Wait reads while anyone waits.
const FeedStep = feedStep
