"""Server-side rules: outage detection and notices (`rules.outage`), and the monthly utility
allocation (`rules.allocation`).

The two do not import each other: `app.monthly` puts the allocation job on the
rules service's scheduler (import-linter holds them apart).
"""
