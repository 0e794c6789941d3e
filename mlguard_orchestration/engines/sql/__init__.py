"""The SQL engine's compiler: metric requests -> one aggregate statement per table, for a dialect (sqlglot).

Running the statement (through a SQLAlchemy connection or an Airflow hook) comes next; this part is pure:
requests in, SQL text and a decoder out, so every dialect can be golden-tested without its server.
"""

from mlguard_orchestration.engines.sql._compile import Scan, compile_scan, compile_top_k
from mlguard_orchestration.engines.sql._dialects import DIALECTS, Capabilities

__all__ = ["DIALECTS", "Capabilities", "Scan", "compile_scan", "compile_top_k"]
