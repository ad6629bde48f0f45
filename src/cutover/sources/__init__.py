"""sources: what reads the world: Postgres, HTTP, http queries, derived results, probes,
result caps, the observed share, webhooks, query plans. May import runbook and base only."""
