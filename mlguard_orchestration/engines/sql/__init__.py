"""The SQL engine: metric requests -> one aggregate statement (plus bounded probes) per table, for a dialect
(sqlglot), and `SqlEngine`, which runs them through SQLAlchemy.

The compiler is pure: requests in, SQL text and a decoder out, so every dialect can be golden-tested without
its server. This subpackage imports sqlglot; `mlguard_orchestration.engines` does not import it, and
SQLAlchemy is imported only when a `SqlEngine` is made.
"""

from mlguard_orchestration.engines.sql._compile import Scan, compile_scan, compile_top_k
from mlguard_orchestration.engines.sql._dialects import DIALECTS, Capabilities
from mlguard_orchestration.engines.sql._engine import DIALECT_OF, SqlEngine
from mlguard_orchestration.engines.sql._source import is_query

__all__ = ["DIALECTS", "DIALECT_OF", "Capabilities", "Scan", "SqlEngine", "compile_scan", "compile_top_k", "is_query"]
