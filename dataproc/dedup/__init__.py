"""Run-wide near-duplicate removal: MinHash signatures, LSH band buckets, clusters."""
