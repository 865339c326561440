"""The webserver's GraphQL API, called as the UI calls it: queries, mutations, waiting."""

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

WORKSPACE = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""
# What the UI's "Launch backfill" button sends for a partition range of selected assets.
LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack } } }
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { status error { message } }
    ... on Error { message } } }
"""
RUNS = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { __typename
    ... on Runs { results { runId status assetSelection { path } tags { key value } } }
    ... on Error { message } } }
"""
RUN_ERRORS = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message }
        ... on ErrorEvent { error { message causes { message } } } } } } }
"""
# The launchpad's "Launch run", the schedule dialog's "Evaluate" and "Launch all", the run
# page's "Re-execute", and Deployment > Concurrency.
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on Error { message }
  ... on PythonError { stack } } }
"""
SCHEDULE_DRY_RUN = """
mutation DryRun($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) { __typename
    ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
        runRequests { runKey runConfigYaml tags { key value } jobName } } }
    ... on Error { message } ... on PythonError { message } } }
"""
LAUNCH_RUNS = """
mutation LaunchAll($list: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $list) { __typename
    ... on LaunchMultipleRunsResult { launchMultipleRunsResult { __typename
        ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }
    ... on Error { message } } }
"""
REEXECUTE = """
mutation Reexecute($params: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId } } ... on Error { message }
    ... on PythonError { stack } } }
"""
SET_POOL_LIMIT = """
mutation SetLimit($key: String!, $limit: Int!) {
  setConcurrencyLimit(concurrencyKey: $key, limit: $limit) }
"""
POOL = """
query Pool($key: String!) { instance { concurrencyLimit(concurrencyKey: $key) {
  limit activeSlotCount activeRunIds pendingStepCount } } }
"""
RUN = """
query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId status startTime
  endTime tags { key value } stepStats { stepKey status startTime endTime } } } }
"""
MESSAGES = """
query Messages($id: ID!) { logsForRun(runId: $id) { __typename ... on EventConnection {
  events { __typename ... on MessageEvent { message stepKey timestamp } } } } }
"""
# An asset's checks, as its Checks tab lists them.
ASSET_CHECKS = """
query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename
  ... on AssetNode { assetChecksOrError { __typename
    ... on AssetChecks { checks { name canExecuteIndividually } } } } } }
"""
# An asset's partitions by status, as its Partitions tab counts them.
PARTITION_STATS = """
query PartitionStats($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) { __typename
    ... on AssetNode { partitionStats { numMaterialized numMaterializing numFailed } }
    ... on Error { message } } }
"""
# An asset's partitions as ranges by status, as its Partitions tab draws them: what the launch
# dialog's "Failed and missing" reads.
PARTITION_RANGES = """
query PartitionRanges($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) { __typename
    ... on AssetNode { assetPartitionStatuses { __typename
        ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }
"""
# A schedule's or sensor's toggle, and its tick history as the instigator's page lists it.
START_SCHEDULE = """
mutation Start($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { status } } ... on Error { message }
  ... on PythonError { message } } }
"""
START_SENSOR = """
mutation Start($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on Error { message }
  ... on PythonError { message } } }
"""
TICKS = """
query Ticks($selector: InstigationSelector!) {
  instigationStateOrError(instigationSelector: $selector) { __typename
    ... on InstigationState { ticks(limit: 25) { status timestamp cursor runIds skipReason
        error { message } } }
    ... on Error { message } ... on PythonError { message } } }
"""
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
RUN_ENDED = {"SUCCESS", "FAILURE", "CANCELED"}
# Definitions are served as one repository of this name.
REPOSITORY = "__repository__"


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def _launched(result: dict[str, Any]) -> str:
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


class Webserver:
    """A running webserver's GraphQL endpoint; `location` is its code location's name."""

    def __init__(self, port: int, location: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.location = location

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_loaded(self, timeout: float, alive: Callable[[], None]) -> None:
        """Until the webserver answers and its code location is loaded; `alive` raises if the
        processes serving it have died meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            alive()
            try:
                workspace = self.graphql(WORKSPACE)["workspaceOrError"]
            except requests.ConnectionError:
                workspace = {}
            entries = workspace.get("locationEntries", [])
            for entry in entries:
                location = entry["locationOrLoadError"] or {}
                assert location.get("__typename") != "PythonError", location["message"]
            if any(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
                return
            assert time.monotonic() < deadline, f"not loaded in {timeout} s"
            time.sleep(0.25)

    def launch_backfill(
        self,
        assets: list[str],
        partitions: list[str],
        run_config: Mapping[str, Any] | None = None,
    ) -> str:
        params = {
            "assetSelection": [{"path": [name]} for name in assets],
            "partitionNames": partitions,
            **({"runConfigData": run_config} if run_config else {}),
        }
        return self._backfill(params)

    def launch_backfill_of_ranges(self, ranges: Mapping[str, list[tuple[str, str]]]) -> str:
        """A backfill of each asset's own ranges: what the launch dialog sends for "Failed and
        missing" when the assets' partitions differ."""
        params = {
            "partitionsByAssets": [
                {
                    "assetKey": {"path": [asset]},
                    "partitions": {"ranges": [{"start": s, "end": e} for s, e in spans]},
                }
                for asset, spans in ranges.items()
                if spans
            ]
        }
        return self._backfill(params)

    def _backfill(self, params: Mapping[str, Any]) -> str:
        launched = self.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def materialized_ranges(self, asset: str) -> list[tuple[str, str]]:
        """The asset's materialized partitions as (first, last) key ranges."""
        node = self.graphql(PARTITION_RANGES, assetKey={"path": [asset]})["assetNodeOrError"]
        ranges = node["assetPartitionStatuses"]["ranges"]
        return [(r["startKey"], r["endKey"]) for r in ranges if r["status"] == "MATERIALIZED"]

    def backfill_status(self, backfill_id: str) -> str | None:
        return self.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"].get("status")

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        return self.runs_tagged({"dagster/backfill": backfill_id})

    def runs_tagged(self, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        """The runs with all of `tags`, newest first, each with its tags as a dict."""
        runs = self.graphql(RUNS, tags=_tags(tags))["runsOrError"]["results"]
        return [{**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}} for run in runs]

    def start_schedule(self, name: str) -> None:
        selector = {**self._repository, "scheduleName": name}
        started = self.graphql(START_SCHEDULE, selector=selector)["startSchedule"]
        assert started.get("scheduleState", {}).get("status") == "RUNNING", started

    def start_sensor(self, name: str) -> None:
        selector = {**self._repository, "sensorName": name}
        started = self.graphql(START_SENSOR, selector=selector)["startSensor"]
        assert started.get("sensorState", {}).get("status") == "RUNNING", started

    def ticks(self, name: str) -> list[dict[str, Any]]:
        """The schedule's or sensor's ticks, oldest first, as the instance keeps them."""
        selector = {**self._repository, "name": name}
        state = self.graphql(TICKS, selector=selector)["instigationStateOrError"]
        assert state["__typename"] == "InstigationState", state
        return state["ticks"][::-1]

    @property
    def _repository(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": REPOSITORY}

    def run_errors(self, run_id: str) -> list[str]:
        """The error messages of a run's events, to explain a run that did not succeed."""
        events = self.graphql(RUN_ERRORS, runId=run_id)["logsForRun"].get("events", [])
        return [
            " <- ".join(e["message"].strip() for e in [event["error"], *event["error"]["causes"]])
            if event.get("error")
            else event["message"]
            for event in events
            if event.get("error") or event["__typename"] == "RunFailureEvent"
        ]

    def launch_run(self, job: str, run_config: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        params = {
            "selector": {
                **self._repository,
                "jobName": job,
            },
            "runConfigData": run_config,
            "executionMetadata": {"tags": _tags(tags)},
        }
        return _launched(self.graphql(LAUNCH_RUN, params=params)["launchRun"])

    def partition_stats(self, asset_path: list[str]) -> dict[str, int]:
        """How many of the asset's partitions are materialized, materializing and failed."""
        node = self.graphql(PARTITION_STATS, assetKey={"path": asset_path})["assetNodeOrError"]
        return node["partitionStats"]

    def asset_checks(self, asset: str) -> dict[str, str]:
        """The asset's checks, each with whether the UI can execute it without the asset."""
        node = self.graphql(ASSET_CHECKS, key={"path": [asset]})["assetNodeOrError"]
        checks = node["assetChecksOrError"]["checks"]
        return {check["name"]: check["canExecuteIndividually"] for check in checks}

    def execute_check(self, asset: str, check: str) -> str:
        """A check's *Execute* button: a run of the asset job that selects the check only."""
        selector = {
            **self._repository,
            "jobName": "__ASSET_JOB",
            "assetSelection": [],
            "assetCheckSelection": [{"assetKey": {"path": [asset]}, "name": check}],
        }
        return _launched(self.graphql(LAUNCH_RUN, params={"selector": selector})["launchRun"])

    def evaluate_schedule(self, name: str, timestamp: float) -> list[dict[str, Any]]:
        """The run requests of the schedule's tick at `timestamp`, nothing launched."""
        selector = {
            **self._repository,
            "scheduleName": name,
        }
        tick = self.graphql(SCHEDULE_DRY_RUN, selector=selector, timestamp=timestamp)
        return tick["scheduleDryRun"]["evaluationResult"]["runRequests"]

    def launch_run_requests(self, requests: list[dict[str, Any]]) -> list[str]:
        params = [
            {
                "selector": {
                    **self._repository,
                    "jobName": request["jobName"],
                },
                "runConfigData": request["runConfigYaml"],
                "executionMetadata": {"tags": request["tags"]},
            }
            for request in requests
        ]
        launched = self.graphql(LAUNCH_RUNS, list=params)["launchMultipleRuns"]
        return [_launched(run) for run in launched["launchMultipleRunsResult"]]

    def reexecute_from_failure(self, run_id: str) -> str:
        params = {"parentRunId": run_id, "strategy": "FROM_FAILURE"}
        return _launched(self.graphql(REEXECUTE, params=params)["launchRunReexecution"])

    def set_pool_limit(self, pool: str, limit: int) -> None:
        assert self.graphql(SET_POOL_LIMIT, key=pool, limit=limit)["setConcurrencyLimit"]

    def pool(self, pool: str) -> dict[str, Any]:
        return self.graphql(POOL, key=pool)["instance"]["concurrencyLimit"]

    def run(self, run_id: str) -> dict[str, Any]:
        """The run with its tags as a dict and its steps' timelines (`stepStats`)."""
        run = self.graphql(RUN, id=run_id)["runOrError"]
        return {**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}}

    def step_statuses(self, run_id: str) -> dict[str, str]:
        return {step["stepKey"]: step["status"] for step in self.run(run_id)["stepStats"]}

    def worker_pid(self, run_id: str) -> int:
        """The run worker's process, as the multiprocess executor reports it."""
        for event in self.messages(run_id):
            if found := re.search(
                r"multiprocess executor: parent process \(pid: (\d+)\)", event["message"]
            ):
                return int(found.group(1))
        raise AssertionError(f"run {run_id} reported no run worker process")

    def messages(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events that carry a message: engine events, step events, logs."""
        events = self.graphql(MESSAGES, id=run_id)["logsForRun"]["events"]
        return [event for event in events if event.get("message")]
