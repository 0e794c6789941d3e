"""One local Spark session for the whole test session (a JVM start costs seconds; reuse it).

local[2] (these machines have two cores), two shuffle partitions (the default 200 turns every small
aggregate into 200 tasks), no UI, the driver bound to 127.0.0.1 (no network beyond loopback), WARN-level
logs, and a temporary warehouse/local dir removed at the end. Java: $JAVA_HOME/bin/java, else `java` on
PATH; missing: skipped locally, an error in CI (`tests/_engines.py`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests._required import unavailable

SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.memory": "1g",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# WARN and above only, from the JVM's first line (setLogLevel only acts once the session is up)
LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
logger.conf.name = org.apache.spark.SparkConf
logger.conf.level = error
"""
startup_s: float | None = None  # seconds the last session took to start (benchmarks read it; tests never assert it)


def find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def spark_session() -> Iterator[Any]:
    """Yield a started SparkSession; its start-up time is left in `startup_s`."""
    if find_java() is None:
        unavailable("Spark", "no Java runtime (set JAVA_HOME or put java on PATH; Debian: openjdk-17-jre-headless)")
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        unavailable("Spark", f"pyspark is not installed ({e}); run `make .venv`")
    scratch = Path(tempfile.mkdtemp(prefix="mlguard-spark-"))
    (scratch / "log4j2.properties").write_text(LOG4J2)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("mlguard-tests")
    for key, value in {**SPARK_CONF, "spark.local.dir": str(scratch / "local"),
                       "spark.sql.warehouse.dir": str(scratch / "warehouse"),
                       "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile={scratch / 'log4j2.properties'}",
                       }.items():
        builder = builder.config(key, value)
    t0 = time.perf_counter()
    spark = builder.getOrCreate()
    global startup_s
    startup_s = time.perf_counter() - t0
    spark.sparkContext.setLogLevel("WARN")
    try:
        yield spark
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)

