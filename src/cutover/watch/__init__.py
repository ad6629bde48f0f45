"""watch: the headless watcher face: evaluates on schedule, records evidence, says each
change, rolls back where a stage arms it. May import traffic and below; no other face."""
