"""base: the rules every layer keeps: errors safe to show, secrets cut out, terminal controls
made inert, files for this user's eyes only. Imports nothing of cutover; every layer uses it."""
