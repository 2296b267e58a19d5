"""A job's progress read from a store, shared by the commands that show it.

``figures`` builds every partition's counts, rates and ETA from the store's aggregates
(read by `status`, `estimate --from-status` and `report`); ``durations`` says lengths of
time in words. Neither is a command, and neither imports one.
"""
