"""Turn a JUnit XML report of ``pytest tests/faults`` into the scenario table of docs/faults.md.

    pytest tests/faults --junitxml=faults.xml && python -m tests.faults.report faults.xml

Rows are scenarios (a test function, and its variant), columns the services; a cell says which modes passed
(``pass`` when sync and async both did) or why the scenario does not apply (``NOT_APPLICABLE``).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

from .harness import HARNESSES

SERVICES = list(HARNESSES)

SCENARIOS: dict[str, str] = {
    "test_listing_is_identical_under_throttling_and_resets": "Listing identical under 429 / 503 (Retry-After "
    "seconds and HTTP-date) / RST before answer / RST mid-body; one repeat per fault; within budget",
    "test_listing_gives_up_after_max_attempts": "Listing: persistent 503 stops after max_attempts "
    "(counted at the server), ServerError",
    "test_retries_stop_within_the_time_budget": "Persistent 429 with Retry-After: stops within the time "
    "budget, RateLimitedError with the hint",
    "test_upload_is_identical_under_faults": "Upload byte-identical under 429 / 503 / RST / RST mid-request-"
    "body (one repeat per fault)",
    "test_download_is_identical_under_faults": "Download byte-identical under 429 / 503 / RST / RST mid-body; "
    "no partial files left",
    "test_upload_persistent_503_stops_within_the_policy": "Upload: persistent 503 (Retry-After): "
    "ServerError with the hint after the policy's attempts (counted at the server), within the budget",
    "test_upload_reset_mid_body_every_time_stops_within_the_policy": "Upload: RST mid-request-body on "
    "every attempt: ConnectionError after the policy's attempts, within the budget",
    "test_upload_cut_more_often_than_attempts_with_progress_finishes": "Upload cut more often than "
    "max_attempts, each time after bytes arrived: finishes, each request sends only the rest",
    "test_download_persistent_503_stops_within_the_policy": "Download: persistent 503 (Retry-After): "
    "ServerError with the hint after the policy's attempts (counted at the server), within the budget",
    "test_download_reset_mid_body_every_time_stops_within_the_policy": "Download: RST mid-body on every "
    "attempt (no progress): ConnectionError after max_attempts for the whole transfer, within the budget",
    "test_stalled_download_stops_within_the_budget": "Download stalled (RST mid-body, 1,000 attempts "
    "allowed): stops within the time budget",
    "test_download_with_more_transient_faults_than_attempts_is_identical": "Download with more transient "
    "faults than max_attempts (progress in between): byte-identical",
    "test_create_that_failed_after_acting_leaves_one_record": "Create: server acted, then 500 / RST: no "
    "duplicate, typed error (PUT: repeated safely)",
    "test_killed_ranged_download_resumes_and_verifies": "Ranged download killed (SIGKILL) mid-way: dest "
    "absent; resume fetches only missing ranges + a damaged one; verified",
    "test_killed_single_stream_download_resumes_and_verifies": "Single-stream download killed mid-body: "
    "dest absent; resume from the partial file; verified",
    "test_killed_multipart_upload_resumes_without_resending_parts": "Multipart upload killed (SIGKILL) "
    "mid-way: resume sends only the parts not journaled, same upload",
    "test_upload_cut_mid_body_continues_from_the_servers_offset": "Upload cut mid-body (server keeps the "
    "part): continues from the server's offset",
    "test_killed_offset_upload_continues_with_its_token": "Offset upload killed (SIGKILL) mid-way: a new "
    "process continues with the journaled token from the server's offset; no duplicate item",
    "test_stalled_headers_hit_the_read_timeout": "Stalled headers: read timeout, TimeoutError, no hang",
    "test_trickling_body_hits_the_time_budget": "Trickling body of a buffered call: time budget, TimeoutError",
    "test_truncated_body_is_a_connection_error": "Body shorter than Content-Length: ConnectionError after "
    "the retries",
    "test_malformed_body_is_a_response_format_error": "Malformed body (invalid JSON, HTML, empty, list, "
    "null, every field of the wrong type): ResponseFormatError",
    "test_missing_field_is_a_response_format_error": "Missing required field: ResponseFormatError naming it",
    "test_wrong_type_is_a_response_format_error": "One field of the wrong JSON type: ResponseFormatError "
    "naming it",
    "test_huge_body_is_refused_early": "512 MiB body for a buffered call: ResponseTooLargeError, early",
    "test_redirect_to_another_host_is_not_followed_with_credentials": "Undocumented redirect to another "
    "host: typed error, nothing sent there",
    "test_malformed_listing_page_is_a_response_format_error": "Malformed listing page (invalid JSON, wrong "
    "types): ResponseFormatError",
    "test_credentials_are_refused_over_plain_http_to_a_remote_host": "Credentials over plain http to a "
    "non-loopback host: InsecureTransportError, nothing sent",
    "test_tls_verification_cannot_be_switched_off_silently": "verify=False warns InsecureTLSWarning",
    "test_error_bodies_that_echo_credentials_are_redacted": "Error body echoing the request's credentials: "
    "message redacted",
    "test_authorization_never_reaches_another_host": "No credentials to another host (followed redirect, "
    "direct request)",
    "test_storage_never_sees_credentials": "Storage host (presigned URLs) never sees credentials",
    "test_reprs_show_no_secrets": "Reprs of client, auth, config show no secret",
    "test_thousand_concurrent_requests_share_a_bounded_pool": "1,000 requests through one client (async: "
    "1,000 at once; sync: a 64-thread pool): peak in flight <= limit, <= limit+1 connections, no errors, "
    "pool empty and no fd leaked after close",
}

NOT_APPLICABLE: dict[tuple[str, str], str] = {}
_ONE_POST = (
    "n/a: the upload is one multipart POST that creates the datafile; it is never repeated blindly "
    "(see the create row)"
)
for _scenario in (
    "test_upload_is_identical_under_faults",
    "test_download_is_identical_under_faults",
    "test_upload_persistent_503_stops_within_the_policy",
    "test_upload_reset_mid_body_every_time_stops_within_the_policy",
    "test_upload_cut_more_often_than_attempts_with_progress_finishes",
    "test_download_persistent_503_stops_within_the_policy",
    "test_download_reset_mid_body_every_time_stops_within_the_policy",
    "test_stalled_download_stops_within_the_budget",
    "test_download_with_more_transient_faults_than_attempts_is_identical",
    "test_killed_ranged_download_resumes_and_verifies",
    "test_killed_single_stream_download_resumes_and_verifies",
    "test_killed_multipart_upload_resumes_without_resending_parts",
    "test_upload_cut_mid_body_continues_from_the_servers_offset",
    "test_killed_offset_upload_continues_with_its_token",
    "test_storage_never_sees_credentials",
):
    NOT_APPLICABLE[_scenario, "dserver"] = "n/a: dserver indexes metadata; it moves no file bytes"
NOT_APPLICABLE.update(
    {
        (
            "test_upload_is_identical_under_faults",
            "mytardis",
        ): "n/a: the upload is one multipart POST that "
        "creates the datafile; it is never repeated blindly (see the create row)",
        (
            "test_killed_ranged_download_resumes_and_verifies",
            "mytardis",
        ): "n/a: serves whole files (no Range)",
        (
            "test_killed_ranged_download_resumes_and_verifies",
            "midas",
        ): "n/a: no Range (resumes with offset=)",
        (
            "test_killed_multipart_upload_resumes_without_resending_parts",
            "mytardis",
        ): "n/a: no resumable upload in the protocol",
        (
            "test_killed_multipart_upload_resumes_without_resending_parts",
            "midas",
        ): "n/a: one offset-based PUT, not parts; a killed upload continues with its journaled token "
        "(offset rows)",
        (
            "test_upload_cut_mid_body_continues_from_the_servers_offset",
            "dandi",
        ): "n/a: S3 multipart parts (killed-upload row)",
        (
            "test_upload_cut_mid_body_continues_from_the_servers_offset",
            "gen3",
        ): "n/a: S3 multipart parts (killed-upload row)",
        (
            "test_upload_cut_mid_body_continues_from_the_servers_offset",
            "mytardis",
        ): "n/a: no resumable upload in the protocol",
        (
            "test_killed_offset_upload_continues_with_its_token",
            "dandi",
        ): "n/a: S3 multipart parts (killed-upload row)",
        (
            "test_killed_offset_upload_continues_with_its_token",
            "gen3",
        ): "n/a: S3 multipart parts (killed-upload row)",
        (
            "test_killed_offset_upload_continues_with_its_token",
            "mytardis",
        ): "n/a: no resumable upload in the protocol",
        ("test_upload_persistent_503_stops_within_the_policy", "mytardis"): _ONE_POST,
        ("test_upload_reset_mid_body_every_time_stops_within_the_policy", "mytardis"): _ONE_POST,
        (
            "test_upload_cut_more_often_than_attempts_with_progress_finishes",
            "mytardis",
        ): "n/a: no resumable upload in the protocol",
        (
            "test_upload_cut_more_often_than_attempts_with_progress_finishes",
            "dandi",
        ): "n/a: S3 multipart parts (the transport repeats a part whole)",
        (
            "test_upload_cut_more_often_than_attempts_with_progress_finishes",
            "gen3",
        ): "n/a: S3 multipart parts (the transport repeats a part whole)",
        ("test_storage_never_sees_credentials", "mytardis"): "n/a: no separate storage host",
        ("test_storage_never_sees_credentials", "midas"): "n/a: no separate storage host",
    }
)


def table(xml_path: str) -> str:
    results: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = case.get("name", "")
        if "[" not in name:
            continue
        function, params = name[:-1].split("[", 1)
        parts = params.split("-")
        mode, service = parts[0], parts[-1]
        if function not in SCENARIOS or service not in SERVICES:
            continue
        failed = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        variant = "-".join(parts[1:-1])
        outcome = "fail" if failed else "skip" if skipped else "pass"
        results[function, service][outcome].add(f"{mode}{'/' + variant if variant else ''}")
    lines = [
        "| Scenario | " + " | ".join(SERVICES) + " |",
        "|---|" + "---|" * len(SERVICES),
    ]
    for function, title in SCENARIOS.items():
        cells = []
        for service in SERVICES:
            got = results.get((function, service))
            if got is None:
                cells.append(NOT_APPLICABLE.get((function, service), "not run"))
            elif got.get("fail") or got.get("skip"):
                cells.append(
                    "FAIL " + ", ".join(sorted(got.get("fail", set()) | got.get("skip", set())))
                )
            else:
                modes = {v.split("/")[0] for v in got["pass"]}
                cells.append(
                    "pass ("
                    + " + ".join(sorted(modes, reverse=True))
                    + f", {len(got['pass'])} runs)"
                )
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1]))
