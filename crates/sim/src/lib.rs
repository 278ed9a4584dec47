//! An in-memory AWS with AWS's own rules, latency, quotas and faults.
#![forbid(unsafe_code)]
