"""The benchmark's cases: each module runs some cases and returns their table rows (see its ROWS)."""
