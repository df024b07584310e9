"""Monthly utility allocation (SPEC §8): register arithmetic, tariffs, party shares, export."""
