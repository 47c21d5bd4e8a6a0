"""``curate export``: training shards of the accepted clips (``shards.py``)."""
