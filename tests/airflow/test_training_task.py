"""`@task.mlguard_training` under real Airflow: a healthy fit passes and publishes its report; a diverging fit
stops at the bad step, fails the task without retry, and its report is in XCom."""

from __future__ import annotations

from datetime import timedelta

import torch
from airflow.sdk import DAG, task

from tests.airflow.conftest import register, xcom_report


def test_training_task_publishes_the_report_and_stops_a_diverging_run() -> None:
    with DAG("t_training", schedule=None, catchup=False, default_args={"retries": 2,
                                                                      "retry_delay": timedelta(0)}) as dag:

        @task.mlguard_training()
        def fit(lr: float, guard=None) -> float:  # type: ignore[no-untyped-def]
            torch.manual_seed(0)
            x = torch.randn(512, 4)
            y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(512)
            model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=lr)
            loss_fn = torch.nn.MSELoss()
            with guard(model, optimizer, compute_loss=lambda m, b: loss_fn(m(b[0]).squeeze(-1), b[1])) as g:
                for step in range(200):
                    idx = torch.arange(step * 32, step * 32 + 32) % 512
                    optimizer.zero_grad()
                    out = model(x[idx]).squeeze(-1)
                    loss = loss_fn(out, y[idx])
                    loss.backward()
                    g.step(loss, batch=(x[idx], y[idx]), predictions=out, targets=y[idx])
            return float(loss.detach())

        fit.override(task_id="healthy")(0.01)
        fit.override(task_id="diverging")(5.0)
    run = register(dag).test()
    got = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert got["healthy"][0] == "success"
    assert got["diverging"] == ("failed", 1)  # the guard's verdict is final: no retry
    healthy = xcom_report(run, "healthy")
    assert healthy is not None and healthy.status == "pass", healthy and healthy.headline()
    bad = xcom_report(run, "diverging")
    assert bad is not None and bad.status == "fail"
    assert any(f.code.startswith("training.") for f in bad.findings), [f.code for f in bad.findings]
    assert bad.context["task_id"] == "diverging"
