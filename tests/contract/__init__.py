"""The guard's own contract (issue 11), one module per class of bad input: whatever the data, the source or the
network does, a guard answers with a report — a correct result, or an error naming what, where and what was
expected — in bounded time, memory and bytes, and never with a raw traceback or a secret."""
