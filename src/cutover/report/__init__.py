"""report: the record as pictures and documents: stage visits, readings and restarts over time,
`cutover report` in HTML and Markdown. May import judge, record and below; no face."""
