"""record: what is recorded: the hash-chained journal, its events, evidence, snapshots, the
state replayed from them. May import sources (a result's shape), runbook and base."""
