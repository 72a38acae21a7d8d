"""Active health checks: the check grammar (spec), a check's outcome (result), the rise/fall
state machine (state, sans-IO), the prober that runs one check (probe) and the checker that
runs them all on the loop (checker).

Nothing is imported here: the table imports `spec` while the HTTP package, which `probe`
needs, may still be loading."""
