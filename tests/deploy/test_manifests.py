"""The Kubernetes Indexed Job and the Cloud Run Jobs commands ask for what a worker needs."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from friendscrape.config import Settings

ROOT = Path(__file__).resolve().parents[2]
JOB_YAML = ROOT / "deploy" / "kubernetes" / "job.yaml"
CLOUD_RUN = ROOT / "deploy" / "cloud-run" / "job.sh"
PARTITIONS = 10


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    documents = list(yaml.safe_load_all(JOB_YAML.read_text(encoding="utf-8")))
    assert len(documents) == 1
    document: dict[str, Any] = documents[0]
    return document


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_job_is_indexed_with_one_completion_per_partition(job: dict[str, Any]) -> None:
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == PARTITIONS
    assert 1 <= spec["parallelism"] <= spec["completions"]
    # backoffLimitPerIndex requires restartPolicy Never.
    assert spec["backoffLimitPerIndex"] >= 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_exits_a_restart_cannot_fix_fail_the_job(job: dict[str, Any]) -> None:
    # Exit 2 (bad input) and 5 (the upstream down or wrong for every user) come back on
    # every start; node drains are not counted. Exit-code rules need restartPolicy Never.
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    (fail,) = [rule for rule in rules if rule["action"] == "FailJob"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert fail["onExitCodes"] == {
        "containerName": container["name"],
        "operator": "In",
        "values": [2, 5],
    }
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_worker_runs_auto_partition_against_bigquery(job: dict[str, Any]) -> None:
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["run", "--partition", "auto"]
    assert "command" not in container, "the image's ENTRYPOINT is friendscrape"
    env = _env(container)
    assert env["FRIENDSCRAPE_STORE"].startswith("bigquery://")
    assert container["resources"]["limits"]["memory"] == "512Mi"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001


def test_google_credentials_come_from_a_mounted_secret(job: dict[str, Any]) -> None:
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    credentials = Path(_env(container)["GOOGLE_APPLICATION_CREDENTIALS"])
    mount = next(m for m in container["volumeMounts"] if credentials.parent == Path(m["mountPath"]))
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"]
    assert {item["path"] for item in volume["secret"]["items"]} == {credentials.name}


def test_grace_period_outlasts_the_workers_own() -> None:
    # SIGTERM, then the worker's grace period, then the final flush: all before SIGKILL.
    job = yaml.safe_load(JOB_YAML.read_text(encoding="utf-8"))
    grace = Settings.model_fields["grace_period"].default
    assert job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace + 30


def _gcloud_commands() -> list[list[str]]:
    text = CLOUD_RUN.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        shlex.split(line, comments=True)
        for line in text.splitlines()
        if line.strip().startswith("gcloud ")
    ]


def _flags(words: list[str]) -> dict[str, str]:
    flags: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            flags[name] = value
        elif word.startswith("--"):
            flags[word] = words[index + 1]
            index += 1
        index += 1
    return flags


def test_cloud_run_job_has_a_task_per_partition_on_bigquery() -> None:
    commands = _gcloud_commands()
    assert [words[:4] for words in commands] == [
        ["gcloud", "run", "jobs", "$action"],
        ["gcloud", "run", "jobs", "execute"],
    ]
    flags = _flags(commands[0])
    assert flags["--args"] == "run,--partition,auto"
    assert flags["--memory"] == "512Mi"
    assert flags["--tasks"] == "$TASKS"
    assert "FRIENDSCRAPE_STORE=bigquery://${PROJECT}/${DATASET}" in flags["--set-env-vars"]
    text = CLOUD_RUN.read_text(encoding="utf-8")
    assert f'TASKS="${{TASKS:-{PARTITIONS}}}"' in text
    assert "create|update)" in text


def test_cloud_run_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-n", CLOUD_RUN], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        [bash, CLOUD_RUN, "create"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode != 0
    assert "set PROJECT" in missing.stderr
