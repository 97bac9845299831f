"""erpsync benchmarks: what each synced record costs, side by side with the obvious way.

``python -m bench`` (``make bench``) runs every benchmark against the local stack (moto and the
sims, no cloud account) and rewrites docs/PERFORMANCE.md. Benchmarks are not tests: nothing
here asserts, and nothing in ``make test`` times anything.
"""
