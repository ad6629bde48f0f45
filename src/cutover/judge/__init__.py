"""judge: how it is judged: gates, comparisons, trends, statistics, holds, alarms, the check,
the digest, and the session that runs and judges the queries. May import record and below."""
