"""Domain layer: vocabulary, value objects, rule specs, verdicts and errors.

No I/O, no Flask, no geopandas: everything here is testable with plain Python values.
"""
