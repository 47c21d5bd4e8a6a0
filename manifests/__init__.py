"""Table schemas, atomic Parquet parts and DuckDB views of a dataset root."""

from manifests.schema import BLENDSHAPE_NAMES, FAILURE_REASONS, error_code, error_text
from manifests.store import DatasetRoot, SchemaMismatch, records_to_table, write_parquet_atomic
from manifests.views import connect

__all__ = [
    "BLENDSHAPE_NAMES",
    "FAILURE_REASONS",
    "DatasetRoot",
    "SchemaMismatch",
    "connect",
    "error_code",
    "error_text",
    "records_to_table",
    "write_parquet_atomic",
]
