package ledger

// FenceKey is the fence's advisory lock, for tests that leave it held.
const FenceKey = fenceKey
