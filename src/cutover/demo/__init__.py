"""The demo world: an embedded soulprint database, simulated imports and local endpoints."""
