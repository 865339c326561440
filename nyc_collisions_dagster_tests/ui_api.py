"""The webserver's GraphQL API, called as the UI calls it: queries, mutations, waiting."""

import time
from collections.abc import Callable
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
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


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

    def launch_backfill(self, assets: list[str], partitions: list[str]) -> str:
        params = {"assetSelection": [{"path": [name]} for name in assets],
                  "partitionNames": partitions}
        launched = self.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def backfill_status(self, backfill_id: str) -> str | None:
        return self.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"].get("status")

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        runs = self.graphql(RUNS, tags=[{"key": "dagster/backfill", "value": backfill_id}])
        return runs["runsOrError"]["results"]

    def run_errors(self, run_id: str) -> list[str]:
        """The error messages of a run's events, to explain a run that did not succeed."""
        events = self.graphql(RUN_ERRORS, runId=run_id)["logsForRun"].get("events", [])
        return [
            " <- ".join(e["message"].strip() for e in [event["error"], *event["error"]["causes"]])
            if event.get("error") else event["message"]
            for event in events
            if event.get("error") or event["__typename"] == "RunFailureEvent"
        ]
