"""`make bench`: what users wait for, measured on the `sam build` artifacts (see docs/benchmarks.md)."""
