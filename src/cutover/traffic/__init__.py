"""traffic: what moves traffic: flags (vercel, file, command), the moves, what may be done
now, sign-offs, detaching from a dead terminal. May import judge and below; no face."""
