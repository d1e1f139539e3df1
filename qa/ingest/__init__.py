"""From corpus files to an index: reading documents (`readers`), chunking them (`chunking`),
sentence spans (`sentences`), and `qa index` (`indexer`).

The package exports nothing: callers import the module they need.
"""
