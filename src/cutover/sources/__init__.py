"""sources: what reads the world: Postgres, HTTP, http queries, probes, result caps, the
observed share, webhooks, query plans. May import runbook and base; no record, no verdict."""
