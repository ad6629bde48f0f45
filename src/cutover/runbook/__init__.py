"""runbook: what the runbook says: model, keys and schema, the loader and its file:line:col
problems, durations, expressions, the SQL files and their guard. May import base only."""
