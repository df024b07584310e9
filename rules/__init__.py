"""Server-side rules: the monthly utility allocation (and, later, outage detection)."""
