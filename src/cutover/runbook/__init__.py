"""runbook: what the runbook says: its model, the loader and its file:line:col problems,
durations, the SQL files and their guard, the vetted memo. May import base only."""
