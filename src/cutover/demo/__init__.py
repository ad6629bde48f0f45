"""demo: the whole world on this machine (embedded Postgres, simulated imports, local Vercel,
RLM, Render). May import every layer and the console; its fakes import nothing of cutover."""
