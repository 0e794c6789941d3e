"""`mlguard profile` and `mlguard check` on a database URL: the profile and the checks run in a real
PostgreSQL (URL#schema.table or URL#SELECT …), with the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests._postgres import PostgresServer, load_frame
from tests.test_cli import mlguard


def test_profile_and_check_a_postgres_table_by_url(postgres: PostgresServer, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 8_000
    frame = pd.DataFrame({"user_id": np.arange(n), "spend": rng.lognormal(3, 0.5, n),
                          "plan": rng.choice(["basic", "premium"], n)})
    with postgres.connect() as con:
        load_frame(con, ("public", "spend ref"), frame)
        load_frame(con, ("public", "spend cents"), frame.assign(spend=frame.spend * 100))
    profile = tmp_path / "ref.json"
    proc = mlguard("profile", f"{postgres.url}#public.spend ref", "-o", str(profile))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(profile.read_text())["rows"] == n
    good = mlguard("check", f"{postgres.url}#SELECT * FROM \"spend ref\" WHERE user_id >= 0", "--reference",
                   str(profile), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "(postgres)" in json.loads(good.stdout)["tables"]["data"]["source"]
    bad = mlguard("check", f"{postgres.url}#public.spend cents", "--reference", str(profile), "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "drift.numeric" in {f["code"] for f in json.loads(bad.stdout)["findings"]}


def test_a_database_url_without_a_table_is_a_guard_error(postgres: PostgresServer, tmp_path: Path) -> None:
    proc = mlguard("check", postgres.url, "--reference", str(tmp_path / "none.json"), "--json")
    assert proc.returncode == 2
    assert "after '#'" in json.loads(proc.stdout)["error"]["message"]
    missing = mlguard("check", f"{postgres.url}#public.no_such_table", "--reference", str(tmp_path / "x.json"))
    assert missing.returncode == 2
